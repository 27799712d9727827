// The hard-bounce reaction: the address is suppressed for the tenant (30 days by default) and
// the user is charged one invalid recipient.
import { afterEach, describe, expect, it } from 'vitest';
import { makeHardBounceReaction } from '../../../core/app/hard-bounce.js';
import { freshStores, T0 } from './use-cases.fixture.js';

let stores: ReturnType<typeof freshStores>;
afterEach(() => stores.close());

describe('hard-bounce reaction', () => {
  it("suppresses the address for the tenant only and charges the user", async () => {
    stores = freshStores();
    const charged: Array<[string, string]> = [];
    const react = makeHardBounceReaction({
      suppression: stores.suppression,
      clock: stores.clock,
      countInvalidRecipient: async (userId, recipient) => {
        charged.push([userId, recipient]);
      },
    });
    await react({ tenantId: 't1', userId: 'u1', recipient: 'gone@example.org', reason: '550 5.1.1 no such user' });
    expect(await stores.suppression.list('t1', T0)).toEqual([
      expect.objectContaining({ address: 'gone@example.org', source: 'bounce', reason: '550 5.1.1 no such user', expiresAt: T0 + 30 * 86_400_000 }),
    ]);
    expect(await stores.suppression.list('t2', T0)).toEqual([]);
    expect(charged).toEqual([['u1', 'gone@example.org']]);
  });

  it('keeps the address suppressed for the days it is given', async () => {
    stores = freshStores();
    const react = makeHardBounceReaction({ suppression: stores.suppression, clock: stores.clock, suppressionDays: 2, countInvalidRecipient: async () => undefined });
    await react({ tenantId: 't1', userId: 'u1', recipient: 'gone@example.org', reason: '5.1.1' });
    expect((await stores.suppression.list('t1', T0))[0]?.expiresAt).toBe(T0 + 2 * 86_400_000);
  });
});
