// The contract every LoginSourceStore backend keeps (SQLite, DynamoDB): a source is familiar from
// a successful login until its expiry and not after, renewing never shortens it, logins and
// sources stay apart, and purging deletes only what expired. Call it from a backend's test.
import { describe, expect, it } from 'vitest';
import type { LoginSourceStore } from '../../core/ports/login-sources.js';

const DAY = 86_400_000;

export function loginSourceStoreContract(backend: string, open: () => Promise<LoginSourceStore>): void {
  describe(`LoginSourceStore contract: ${backend}`, () => {
    it('knows a source from a successful login until its expiry, and not after', async () => {
      const store = await open();
      const at = 1_700_000_000_000;
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at)).toBe(false);
      await store.remember('alice@acme.test', '192.0.2.1', at, 30 * DAY);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at)).toBe(true);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at + 30 * DAY - 1)).toBe(true);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at + 30 * DAY)).toBe(false);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.2', at), 'another source').toBe(false);
      expect(await store.isFamiliar('bob@acme.test', '192.0.2.1', at), 'another login').toBe(false);
      await store.remember('alice@acme.test', '2001:db8:1:2::/64', at, DAY);
      expect(await store.isFamiliar('alice@acme.test', '2001:db8:1:2::/64', at + 1)).toBe(true);
    });

    it('renews a source with every login, and never shortens what it keeps', async () => {
      const store = await open();
      const at = 1_700_000_000_000;
      await store.remember('alice@acme.test', '192.0.2.1', at, 30 * DAY);
      await store.remember('alice@acme.test', '192.0.2.1', at + DAY, DAY);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at + 29 * DAY), 'the longer keep stays').toBe(true);
      await store.remember('alice@acme.test', '192.0.2.1', at + 20 * DAY, 30 * DAY);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at + 49 * DAY), 'renewed from the later login').toBe(true);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at + 50 * DAY)).toBe(false);
    });

    it('purges what expired, counts it, and keeps the rest', async () => {
      const store = await open();
      const at = 1_700_000_000_000;
      await store.remember('alice@acme.test', '192.0.2.1', at, DAY);
      await store.remember('alice@acme.test', '192.0.2.2', at, 10 * DAY);
      await store.remember('bob@acme.test', '192.0.2.1', at, DAY);
      expect(await store.purgeExpired(at + DAY)).toBe(2);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.2', at + DAY)).toBe(true);
      // Remembered again after its purge, a source is familiar again.
      await store.remember('alice@acme.test', '192.0.2.1', at + 2 * DAY, DAY);
      expect(await store.isFamiliar('alice@acme.test', '192.0.2.1', at + 2 * DAY)).toBe(true);
      expect(await store.purgeExpired(at + 2 * DAY)).toBe(0);
    });
  });
}
