// The contract every ConfigStore backend keeps (SQLite, DynamoDB): unique tenant names, one
// tenant per domain, unique logins, IP users never found by login, and deleting a tenant deletes
// its domains, users and pending domain claims; several tenants may claim a domain and the first
// to verify it wins, dropping the other claims; tenant ceilings; a user's id follows from its
// tenant and identity. Call `configStoreContract(name, open)` from a backend's test file.
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

  it('keeps the ceilings the operator sets on a tenant', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    expect(acme.ceilings).toEqual({});
    const capped = await s.updateTenant(acme.id, { ceilings: { mailsPerHour: 500, blockSpam: true } });
    expect(capped.ceilings).toEqual({ mailsPerHour: 500, blockSpam: true });
    // Changing something else keeps them.
    await s.updateTenant(acme.id, { suspended: true });
    expect((await s.getTenant(acme.id))?.ceilings).toEqual({ mailsPerHour: 500, blockSpam: true });
    expect((await s.listTenants())[0]?.ceilings).toEqual({ mailsPerHour: 500, blockSpam: true });
    await expect(s.updateTenant(acme.id, { ceilings: { mailsPerHour: 0 } })).rejects.toThrow();
    await s.updateTenant(acme.id, { ceilings: {} });
    expect((await s.getTenantByName('acme'))?.ceilings).toEqual({});
  });

  it('lets several tenants claim a domain; the first to verify wins and the other claims go', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    const initech = await s.createTenant('initech');
    const claim = await s.claimDomain(acme.id, 'bank.test', 'a'.repeat(32));
    expect(claim).toEqual({ name: 'bank.test', tenantId: acme.id, token: 'a'.repeat(32), createdAt: 1234 });
    await s.claimDomain(globex.id, 'bank.test', 'b'.repeat(32));
    await s.claimDomain(initech.id, 'bank.test', 'e'.repeat(32));
    await s.claimDomain(acme.id, 'another.test', 'f'.repeat(32));
    await expect(s.claimDomain(acme.id, 'bank.test', 'c'.repeat(32))).rejects.toThrow(ConflictError);
    expect(await s.getDomainClaim(acme.id, 'bank.test')).toEqual(claim);
    expect((await s.listDomainClaims(acme.id)).map((c) => c.name)).toEqual(['another.test', 'bank.test']);
    // A claim serves nothing until verified.
    expect(await s.getDomain('bank.test')).toBeUndefined();
    const won = await s.verifyDomainClaim(globex.id, 'bank.test');
    expect(won).toEqual({ name: 'bank.test', tenantId: globex.id, createdAt: 1234 });
    expect(await s.getDomain('bank.test')).toEqual(won);
    expect((await s.listDomains(globex.id)).map((d) => d.name)).toEqual(['bank.test']);
    // Every claim on the name went with the verification, the winner's too; other names stay.
    expect((await s.listDomainClaims(acme.id)).map((c) => c.name)).toEqual(['another.test']);
    expect(await s.listDomainClaims(globex.id)).toEqual([]);
    expect(await s.getDomainClaim(initech.id, 'bank.test')).toBeUndefined();
    await expect(s.verifyDomainClaim(acme.id, 'bank.test')).rejects.toThrow(ConflictError);
    await expect(s.claimDomain(acme.id, 'bank.test', 'd'.repeat(32))).rejects.toThrow(ConflictError);
    await expect(s.claimDomain(globex.id, 'bank.test', 'd'.repeat(32))).rejects.toThrow(/already one of this tenant/);
    await expect(s.verifyDomainClaim(acme.id, 'nothing.test')).rejects.toThrow(NotFoundError);
    await s.removeDomainClaim(acme.id, 'another.test');
    await expect(s.removeDomainClaim(acme.id, 'another.test')).rejects.toThrow(NotFoundError);
    await expect(s.verifyDomainClaim(acme.id, 'another.test')).rejects.toThrow(NotFoundError);
  });

  it('lets exactly one of two tenants verifying the same domain at once win', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    await s.claimDomain(acme.id, 'race.test', 'a'.repeat(32));
    await s.claimDomain(globex.id, 'race.test', 'b'.repeat(32));
    const outcomes = await Promise.allSettled([s.verifyDomainClaim(acme.id, 'race.test'), s.verifyDomainClaim(globex.id, 'race.test')]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const lost = outcomes.find((o) => o.status === 'rejected');
    expect(lost?.status === 'rejected' ? lost.reason : undefined).toBeInstanceOf(ConflictError);
    expect(await s.listDomainClaims(acme.id)).toEqual([]);
    expect(await s.listDomainClaims(globex.id)).toEqual([]);
  });

  it('leaves no claim behind on a domain verified while other tenants claim it', async () => {
    const s = await open({ now: () => 1234 });
    const winner = await s.createTenant('winner');
    const others = await Promise.all(Array.from({ length: 8 }, (_, n) => s.createTenant(`other${n}`)));
    await s.claimDomain(winner.id, 'busy.test', 'a'.repeat(32));
    const claims = others.map((tenant) => s.claimDomain(tenant.id, 'busy.test', 'b'.repeat(32)).then(() => 'claimed', (error: unknown) => (error instanceof ConflictError ? 'refused' : error)));
    const [verified, ...outcomes] = await Promise.all([s.verifyDomainClaim(winner.id, 'busy.test'), ...claims]);
    expect(verified.tenantId).toBe(winner.id);
    expect(outcomes.every((outcome) => outcome === 'claimed' || outcome === 'refused')).toBe(true);
    for (const tenant of others) expect(await s.getDomainClaim(tenant.id, 'busy.test')).toBeUndefined();
  });

  it('drops every claim when the operator adds the domain, and with the tenant', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    await s.claimDomain(acme.id, 'shop.test', 'a'.repeat(32));
    await s.addDomain(globex.id, 'shop.test');
    expect(await s.listDomainClaims(acme.id)).toEqual([]);
    await s.claimDomain(acme.id, 'other.test', 'a'.repeat(32));
    await s.claimDomain(acme.id, 'third.test', 'a'.repeat(32));
    await s.deleteTenant(acme.id);
    expect(await s.listDomainClaims(acme.id)).toEqual([]);
    expect(await s.getDomainClaim(acme.id, 'other.test')).toBeUndefined();
    // The names are free to claim again, by another tenant.
    await s.claimDomain(globex.id, 'other.test', 'b'.repeat(32));
    expect((await s.verifyDomainClaim(globex.id, 'other.test')).tenantId).toBe(globex.id);
  });

  it('gives a re-created user the id it had, and another tenant\'s user another id', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    const input = { tenantId: acme.id, kind: 'mailbox' as const, identity: 'alice@acme.test', domain: 'acme.test', passwordHash: 'h' };
    const first = await s.createUser(input);
    await s.deleteUser(first.id);
    const again = await s.createUser(input);
    expect(again.id).toBe(first.id);
    await s.deleteUser(again.id);
    const elsewhere = await s.createUser({ ...input, tenantId: globex.id });
    expect(elsewhere.id).not.toBe(first.id);
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

  it('finds the IP user of a client address, the most specific range first, and forgets it when deleted', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const globex = await s.createTenant('globex');
    const wide = await s.createUser({ tenantId: acme.id, kind: 'ip', identity: '198.51.0.0/16', domain: null, passwordHash: null });
    const narrow = await s.createUser({ tenantId: acme.id, kind: 'ip', identity: '198.51.100.0/24', domain: null, passwordHash: null });
    const host = await s.createUser({ tenantId: globex.id, kind: 'ip', identity: '203.0.113.7/32', domain: null, passwordHash: null });
    const v6 = await s.createUser({ tenantId: globex.id, kind: 'ip', identity: '2001:db8:0:1::/64', domain: null, passwordHash: null });
    // A range wider than an IP user may be made with today, as an older release may have stored it.
    const legacy = await s.createUser({ tenantId: globex.id, kind: 'ip', identity: '10.0.0.0/8', domain: null, passwordHash: null });
    await s.createUser({ tenantId: acme.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: 'h' });
    expect((await s.findIpUser('198.51.100.9'))?.id).toBe(narrow.id);
    expect((await s.findIpUser('198.51.7.9'))?.id).toBe(wide.id);
    expect((await s.findIpUser('::ffff:198.51.100.9'))?.id).toBe(narrow.id);
    expect((await s.findIpUser('203.0.113.7'))?.id).toBe(host.id);
    expect(await s.findIpUser('203.0.113.8')).toBeUndefined();
    expect((await s.findIpUser('2001:db8:0:1:aa::5'))?.id).toBe(v6.id);
    expect(await s.findIpUser('2001:db8:0:2::5')).toBeUndefined();
    expect((await s.findIpUser('10.200.1.1'))?.id).toBe(legacy.id);
    expect(await s.findIpUser('not an address')).toBeUndefined();
    const changed = await s.updateUser(narrow.id, { settings: { mailsPerMinute: 7 } });
    expect(await s.findIpUser('198.51.100.9')).toEqual(changed);
    await s.deleteUser(narrow.id);
    expect((await s.findIpUser('198.51.100.9'))?.id).toBe(wide.id);
    await s.deleteTenant(globex.id);
    expect(await s.findIpUser('203.0.113.7')).toBeUndefined();
    expect(await s.findIpUser('10.200.1.1')).toBeUndefined();
  });

  it('deletes a tenant with its domains, pending claims and users, whose names and logins are free again', async () => {
    const s = await open({ now: () => 1234 });
    const acme = await s.createTenant('acme');
    const other = await s.createTenant('other');
    await s.addDomain(acme.id, 'acme.test');
    await s.claimDomain(acme.id, 'pending.test', 'a'.repeat(32));
    const alice = await s.createUser({ tenantId: acme.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: 'h' });
    const relay = await s.createUser({ tenantId: acme.id, kind: 'ip', identity: '192.0.2.0/24', domain: null, passwordHash: null });
    const kept = await s.createUser({ tenantId: other.id, kind: 'mailbox', identity: 'bob@other.test', domain: 'other.test', passwordHash: 'h' });
    await s.deleteTenant(acme.id);
    expect(await s.getTenant(acme.id)).toBeUndefined();
    expect(await s.getDomain('acme.test')).toBeUndefined();
    expect(await s.listDomains(acme.id)).toEqual([]);
    expect(await s.getDomainClaim(acme.id, 'pending.test')).toBeUndefined();
    expect(await s.getUser(alice.id)).toBeUndefined();
    expect(await s.getUser(relay.id)).toBeUndefined();
    expect(await s.findUserByLogin('alice@acme.test')).toBeUndefined();
    expect(await s.findIpUser('192.0.2.1')).toBeUndefined();
    expect(await s.getUser(kept.id)).toEqual(kept);
    // Everything the tenant held can be taken again.
    const again = await s.createTenant('acme');
    await s.addDomain(again.id, 'acme.test');
    await s.createUser({ tenantId: again.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: 'h' });
    await s.createUser({ tenantId: again.id, kind: 'ip', identity: '192.0.2.0/24', domain: null, passwordHash: null });
    expect((await s.findIpUser('192.0.2.1'))?.tenantId).toBe(again.id);
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
