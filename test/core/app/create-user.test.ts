// User creation: the same rules for every entry (CLI, API, panel); refusals come back typed so
// that each entry words them its own way.
import { afterEach, describe, expect, it } from 'vitest';
import { createUser, UserCreationRefused, type UserRefusal } from '../../../core/app/create-user.js';
import { verifyPassword } from '../../../core/identity.js';
import { freshStores } from './use-cases.fixture.js';

let stores: ReturnType<typeof freshStores>;
afterEach(() => stores.close());

async function refusal(promise: Promise<unknown>): Promise<UserRefusal> {
  const error: unknown = await promise.then(() => undefined, (caught: unknown) => caught);
  if (!(error instanceof UserCreationRefused)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error.refusal;
}

describe('createUser', () => {
  it('creates a mailbox user with a generated password, shown once, stored as a hash, and audited', async () => {
    stores = freshStores();
    const acme = await stores.configStore.createTenant('acme');
    await stores.configStore.addDomain(acme.id, 'acme.test');
    const { user, generatedPassword } = await createUser(stores, { tenant: acme, identity: 'Alice@ACME.test', actor: 'operator (cli)' });
    expect(user).toMatchObject({ kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', tenantId: acme.id });
    expect(generatedPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(await verifyPassword(generatedPassword ?? '', user.passwordHash)).toBe(true);
    expect(await stores.audit.list({ limit: 5 })).toEqual([expect.objectContaining({ action: 'user.created', target: user.identity, actor: 'operator (cli)', detail: { kind: 'mailbox' } })]);
  });

  it('keeps a given password and generates none; an IP user gets no password', async () => {
    stores = freshStores();
    const acme = await stores.configStore.createTenant('acme');
    await stores.configStore.addDomain(acme.id, 'acme.test');
    const given = await createUser(stores, { tenant: acme, identity: 'acme.test', password: 'correct horse battery', actor: 'a' });
    expect(given.generatedPassword).toBeUndefined();
    expect(await verifyPassword('correct horse battery', given.user.passwordHash)).toBe(true);
    const ip = await createUser(stores, { tenant: acme, identity: '192.0.2.0/24', actor: 'a' });
    expect(ip).toEqual({ user: expect.objectContaining({ kind: 'ip', passwordHash: null }) });
  });

  it("refuses an identity outside the tenant's verified domains, and a pending claim does not count", async () => {
    stores = freshStores();
    const acme = await stores.configStore.createTenant('acme');
    const globex = await stores.configStore.createTenant('globex');
    await stores.configStore.addDomain(globex.id, 'globex.test');
    await stores.configStore.claimDomain(acme.id, 'claimed.test', 'f'.repeat(32));
    expect(await refusal(createUser(stores, { tenant: acme, identity: 'bob@globex.test', actor: 'a' }))).toEqual({ reason: 'domain-not-of-tenant', domain: 'globex.test' });
    expect(await refusal(createUser(stores, { tenant: acme, identity: 'claimed.test', actor: 'a' }))).toEqual({ reason: 'domain-not-of-tenant', domain: 'claimed.test' });
    expect(await stores.configStore.listUsers({ tenantId: acme.id })).toEqual([]);
  });

  it('refuses a password for an IP user, a range wider than /16 unless allowed, and a range of another tenant', async () => {
    stores = freshStores();
    const acme = await stores.configStore.createTenant('acme');
    const globex = await stores.configStore.createTenant('globex');
    expect(await refusal(createUser(stores, { tenant: acme, identity: '192.0.2.7', password: 'a password', actor: 'a' }))).toEqual({ reason: 'password-for-ip-user' });
    expect(await refusal(createUser(stores, { tenant: acme, identity: '10.0.0.0/8', actor: 'a' }))).toEqual({ reason: 'range-too-wide', range: '10.0.0.0/8', widest: 16 });
    await createUser(stores, { tenant: acme, identity: '10.0.0.0/8', actor: 'a', allowWideRange: true });
    expect(await refusal(createUser(stores, { tenant: globex, identity: '10.1.2.3', actor: 'a' }))).toEqual({ reason: 'range-overlap', range: '10.1.2.3/32', other: '10.0.0.0/8' });
    expect(await stores.configStore.listUsers({ tenantId: globex.id })).toEqual([]);
  });

  it('holds a tenant key to ranges a tenant may make (public, at most /24)', async () => {
    stores = freshStores();
    const acme = await stores.configStore.createTenant('acme');
    expect(await refusal(createUser(stores, { tenant: acme, identity: '203.0.116.0/23', actor: 'key', asTenant: true }))).toMatchObject({ reason: 'range-not-for-tenants' });
    expect(await refusal(createUser(stores, { tenant: acme, identity: '127.0.0.1', actor: 'key', asTenant: true }))).toMatchObject({ reason: 'range-not-for-tenants' });
    expect((await createUser(stores, { tenant: acme, identity: '93.184.216.0/24', actor: 'key', asTenant: true })).user.kind).toBe('ip');
  });
});
