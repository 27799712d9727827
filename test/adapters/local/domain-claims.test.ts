// Pending domain claims and the columns added to existing databases, on real SQLite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReleaseZeroDatabase } from '../../helpers/release-zero.js';
import { SqliteConfigStore, userIdFor } from '../../../adapters/local/config-store.js';
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { ConflictError, NotFoundError } from '../../../core/stores.js';

function store() {
  return new SqliteConfigStore(openDatabase(':memory:'), { now: () => 1234 });
}

describe('domain claims', () => {
  it('lets several tenants claim a domain; the first to verify wins and the other claims go', async () => {
    const s = store();
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    await s.claimDomain(acme.id, 'bank.test', 'a'.repeat(32));
    await s.claimDomain(globex.id, 'bank.test', 'b'.repeat(32));
    await expect(s.claimDomain(acme.id, 'bank.test', 'c'.repeat(32))).rejects.toThrow(ConflictError);
    expect(await s.getDomain('bank.test')).toBeUndefined();
    expect((await s.verifyDomainClaim(globex.id, 'bank.test')).tenantId).toBe(globex.id);
    expect(await s.listDomainClaims(acme.id)).toEqual([]);
    await expect(s.verifyDomainClaim(acme.id, 'bank.test')).rejects.toThrow(ConflictError);
    await expect(s.claimDomain(acme.id, 'bank.test', 'd'.repeat(32))).rejects.toThrow(ConflictError);
    await expect(s.verifyDomainClaim(acme.id, 'nothing.test')).rejects.toThrow(NotFoundError);
  });

  it('drops every claim when the operator adds the domain, and with the tenant', async () => {
    const s = store();
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    await s.claimDomain(acme.id, 'shop.test', 'a'.repeat(32));
    await s.addDomain(globex.id, 'shop.test');
    expect(await s.listDomainClaims(acme.id)).toEqual([]);
    await s.claimDomain(acme.id, 'other.test', 'a'.repeat(32));
    await s.deleteTenant(acme.id);
    expect(await s.listDomainClaims(acme.id)).toEqual([]);
  });

  it('gives a user the same id when re-created in the same tenant, another in another tenant', () => {
    expect(userIdFor('t1', 'alice@acme.test')).toBe(userIdFor('t1', 'alice@acme.test'));
    expect(userIdFor('t1', 'alice@acme.test')).not.toBe(userIdFor('t2', 'alice@acme.test'));
    expect(userIdFor('t1', 'alice@acme.test')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('existing databases', () => {
  it('gain tenants.ceilings and user_locks.placed_by by migration, keeping their rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-claims-'));
    const path = join(dir, 'outpost.db');
    buildReleaseZeroDatabase(path, (db) => {
      db.exec(`
        INSERT INTO tenants (id, name, settings, suspended, created_at) VALUES ('t1', 'old', '{"mailsPerHour":7}', 0, 1);
        INSERT INTO user_locks VALUES ('u1', 't1', 'a@old.test', 1, 1, 1, NULL, '[]', 0, 1);
      `);
    });
    const db = openDatabase(path);
    const configStore = new SqliteConfigStore(db);
    expect(await configStore.getTenant('t1')).toMatchObject({ name: 'old', settings: { mailsPerHour: 7 }, ceilings: {} });
    const locks = new SqliteLockStore(db);
    expect(await locks.read('u1')).toMatchObject({ locked: true, permanent: true, placedBy: null });
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
