// Domain removal: refused while users of the domain exist; a removed domain takes its DKIM keys
// along; a pending claim is withdrawn; anything else is not found.
import { afterEach, describe, expect, it } from 'vitest';
import { removeDomain } from '../../../core/app/remove-domain.js';
import { ConflictError, NotFoundError } from '../../../core/stores.js';
import { freshStores } from './use-cases.fixture.js';

let stores: ReturnType<typeof freshStores>;
afterEach(() => stores.close());

async function acmeWithShop() {
  stores = freshStores();
  const acme = await stores.configStore.createTenant('acme');
  await stores.configStore.addDomain(acme.id, 'shop.test');
  await stores.dkimKeys.insert({ domain: 'shop.test', selector: 's1', algorithm: 'ed25519', publicKey: 'pub', privateKeyPem: 'private', makeDefault: true });
  return acme;
}

describe('removeDomain', () => {
  it('refuses while users of the domain exist, naming one, and changes nothing', async () => {
    const acme = await acmeWithShop();
    await stores.configStore.createUser({ tenantId: acme.id, kind: 'mailbox', identity: 'bob@shop.test', domain: 'shop.test', passwordHash: null });
    const refused = removeDomain(stores, { tenant: acme, name: 'shop.test', actor: 'operator (cli)' });
    await expect(refused).rejects.toBeInstanceOf(ConflictError);
    await expect(refused).rejects.toThrow('1 user(s) of shop.test exist (e.g. bob@shop.test); delete them first');
    expect(await stores.configStore.getDomain('shop.test')).toBeDefined();
    expect(await stores.dkimKeys.list('shop.test')).toHaveLength(1);
    expect(await stores.audit.list({ limit: 5 })).toEqual([]);
  });

  it('removes a domain without users, with its DKIM keys, and audits it', async () => {
    const acme = await acmeWithShop();
    expect(await removeDomain(stores, { tenant: acme, name: 'shop.test', actor: 'operator (cli)' })).toBe('removed');
    expect(await stores.configStore.getDomain('shop.test')).toBeUndefined();
    expect(await stores.dkimKeys.list('shop.test')).toEqual([]);
    expect(await stores.audit.list({ limit: 5 })).toEqual([expect.objectContaining({ action: 'domain.removed', target: 'shop.test', actor: 'operator (cli)' })]);
  });

  it("withdraws a pending claim, and says not found for another tenant's domain (which stays)", async () => {
    const acme = await acmeWithShop();
    const globex = await stores.configStore.createTenant('globex');
    await stores.configStore.claimDomain(globex.id, 'later.test', 'e'.repeat(32));
    expect(await removeDomain(stores, { tenant: globex, name: 'later.test', actor: 'k' })).toBe('withdrawn');
    expect(await stores.configStore.getDomainClaim(globex.id, 'later.test')).toBeUndefined();
    await expect(removeDomain(stores, { tenant: globex, name: 'shop.test', actor: 'k' })).rejects.toBeInstanceOf(NotFoundError);
    expect((await stores.configStore.getDomain('shop.test'))?.tenantId).toBe(acme.id);
  });
});
