// The contract every ConfigStore backend keeps (SQLite, DynamoDB): unique tenant names, one
// tenant per domain, unique logins, IP users never found by login, and deleting a tenant deletes
// its domains and users. Call `configStoreContract(name, open)` from a backend's test file.
import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, type ConfigStore } from '../../core/stores.js';

export function configStoreContract(backend: string, open: (clock: { now(): number }) => Promise<ConfigStore>): void {
  describe(`ConfigStore contract: ${backend}`, () => {
  it('keeps tenants with their default settings and suspension, and refuses duplicates', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme', { mailsPerHour: 100 });
    expect(acme).toMatchObject({ name: 'acme', settings: { mailsPerHour: 100 }, suspended: false, createdAt: 1234 });
    await expect(s.createTenant('acme')).rejects.toThrow(ConflictError);
    const updated = await s.updateTenant(acme.id, { suspended: true, settings: { mailsPerHour: 5, blockSpam: false } });
    expect(updated).toMatchObject({ suspended: true, settings: { mailsPerHour: 5, blockSpam: false } });
    expect(await s.getTenantByName('acme')).toEqual(updated);
    await expect(s.updateTenant('nope', { suspended: true })).rejects.toThrow(NotFoundError);
    await expect(s.createTenant('bad', { mailsPerHour: -3 })).rejects.toThrow();
  });

  it('serves each domain for one tenant only', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    await s.addDomain(acme.id, 'acme.test');
    await expect(s.addDomain(globex.id, 'acme.test')).rejects.toThrow(ConflictError);
    expect((await s.getDomain('acme.test'))?.tenantId).toBe(acme.id);
    await expect(s.removeDomain(globex.id, 'acme.test')).rejects.toThrow(NotFoundError);
    await s.removeDomain(acme.id, 'acme.test');
    expect(await s.getDomain('acme.test')).toBeUndefined();
  });

  it('finds mailbox and domain users by login, never IP users, and deletes them with their tenant', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    await s.addDomain(acme.id, 'acme.test');
    const alice = await s.createUser({ tenantId: acme.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: 'h1' });
    await s.createUser({ tenantId: acme.id, kind: 'ip', identity: '192.0.2.0/24', domain: null, passwordHash: null });
    await expect(s.createUser({ tenantId: acme.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: 'h2' })).rejects.toThrow(ConflictError);
    expect((await s.findUserByLogin('alice@acme.test'))?.id).toBe(alice.id);
    expect(await s.findUserByLogin('192.0.2.0/24')).toBeUndefined();
    expect((await s.listUsers({ kind: 'ip' })).map((u) => u.identity)).toEqual(['192.0.2.0/24']);
    const changed = await s.updateUser(alice.id, { settings: { mailsPerMinute: 3 }, passwordHash: 'h3' });
    expect(changed).toMatchObject({ settings: { mailsPerMinute: 3 }, passwordHash: 'h3' });
    await s.deleteTenant(acme.id);
    expect(await s.listUsers()).toEqual([]);
    expect(await s.listDomains()).toEqual([]);
  });

    it('lists tenants by name and users by tenant and kind, and forgets a deleted user and its login', async () => {
      const s = await open({ now: () => 1234 });
      const globex = await s.createTenant('globex');
      const acme = await s.createTenant('acme');
      expect((await s.listTenants()).map((t) => t.name)).toEqual(['acme', 'globex']);
      const bob = await s.createUser({ tenantId: acme.id, kind: 'domain', identity: 'acme.test', domain: 'acme.test', passwordHash: 'h' });
      await s.createUser({ tenantId: globex.id, kind: 'mailbox', identity: 'carol@globex.test', domain: 'globex.test', passwordHash: 'h' });
      expect((await s.listUsers({ tenantId: acme.id })).map((u) => u.identity)).toEqual(['acme.test']);
      expect((await s.listUsers()).map((u) => u.identity)).toEqual(['acme.test', 'carol@globex.test']);
      expect((await s.listUsers({ tenantId: globex.id, kind: 'domain' }))).toEqual([]);
      expect(await s.getUser(bob.id)).toEqual(bob);
      await s.deleteUser(bob.id);
      expect(await s.findUserByLogin('acme.test')).toBeUndefined();
      await expect(s.deleteUser(bob.id)).rejects.toThrow(NotFoundError);
      // The login is free again.
      await s.createUser({ tenantId: acme.id, kind: 'domain', identity: 'acme.test', domain: 'acme.test', passwordHash: 'h2' });
      await expect(s.deleteTenant('nope')).rejects.toThrow(NotFoundError);
      await s.deleteTenant(acme.id);
      expect(await s.getTenantByName('acme')).toBeUndefined();
      expect((await s.createTenant('acme')).name).toBe('acme');
    });
  });
}
