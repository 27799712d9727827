// The ingress finds the IP user of an unauthenticated client with one keyed lookup, never by
// listing every IP user, and keeps a found user for a few seconds (IP_USER_CACHE_MS).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IP_USER_CACHE_MS } from '../../core/ip-user-lookup.js';
import { startIngress, type IngressFixture } from '../helpers/ingress-fixture.js';
import { RawSmtp } from '../helpers/smtp-client.js';

let fx: IngressFixture;

beforeAll(async () => {
  fx = await startIngress();
});

afterAll(async () => {
  await fx?.close();
});

describe('IP users at MAIL FROM', () => {
  it('looks the client address up by network, caches the user briefly, and never lists every IP user', async () => {
    // Other tenants' smarthosts elsewhere: none of them is read for this client.
    for (let i = 1; i <= 20; i++) await fx.configStore.createUser({ tenantId: fx.tenantId, kind: 'ip', identity: `198.51.${i}.0/24`, domain: null, passwordHash: null });
    const relay = await fx.configStore.createUser({ tenantId: fx.tenantId, kind: 'ip', identity: '127.0.0.0/24', domain: null, passwordHash: null });
    const listUsers = vi.spyOn(fx.configStore, 'listUsers');
    const findIpUser = vi.spyOn(fx.configStore, 'findIpUser');
    const { client } = await RawSmtp.open(fx.ports.submission);
    try {
      await client.command('EHLO mx.client.test');
      expect(await client.command('MAIL FROM:<app@acme.test>')).toMatch(/^250 /);
      expect(await client.command('RSET')).toMatch(/^250 /);
      expect(await client.command('MAIL FROM:<app@acme.test>')).toMatch(/^250 /);
      expect(listUsers).not.toHaveBeenCalled();
      expect(findIpUser).toHaveBeenCalledTimes(1);

      // Removed: the cached user still relays for at most IP_USER_CACHE_MS, then the client is a stranger.
      await fx.configStore.deleteUser(relay.id);
      expect(await client.command('RSET')).toMatch(/^250 /);
      await new Promise((resolve) => setTimeout(resolve, IP_USER_CACHE_MS + 100));
      expect(await client.command('MAIL FROM:<app@acme.test>')).toMatch(/^530 5\.7\.0 /);
      expect(listUsers).not.toHaveBeenCalled();
    } finally {
      client.close();
    }
  }, 30_000);
});
