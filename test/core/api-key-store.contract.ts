// The contract every ApiKeyStore backend keeps (SQLite, DynamoDB): keys found by id with their
// secret hash, listed per tenant oldest first, revoked only by their own tenant, touched.
import { describe, expect, it } from 'vitest';
import type { ApiKeyStore } from '../../core/api/api-keys.js';

export function apiKeyStoreContract(backend: string, open: () => Promise<ApiKeyStore>): void {
  describe(`ApiKeyStore contract: ${backend}`, () => {
    const key = (id: string, tenantId: string, createdAt: number) => ({ id, tenantId, name: `key ${id}`, createdAt, lastUsedAt: null, secretHash: `hash-${id}` });

    it('finds a key by id with its hash, lists the keys of a tenant oldest first, and touches', async () => {
      const store = await open();
      await store.insert(key('k2', 't1', 2000));
      await store.insert(key('k1', 't1', 1000));
      await store.insert(key('k3', 't2', 1500));
      expect(await store.find('k1')).toEqual(key('k1', 't1', 1000));
      expect(await store.find('nope')).toBeUndefined();
      expect((await store.list('t1')).map((k) => k.id)).toEqual(['k1', 'k2']);
      expect(JSON.stringify(await store.list('t1'))).not.toMatch(/hash-/);
      await store.touch('k1', 5000);
      expect((await store.find('k1'))?.lastUsedAt).toBe(5000);
      await store.touch('gone', 5000);
    });

    it('revokes a key only for its own tenant, and all keys of a tenant', async () => {
      const store = await open();
      await store.insert(key('k1', 't1', 1000));
      await store.insert(key('k2', 't1', 2000));
      await store.insert(key('k3', 't2', 1500));
      expect(await store.revoke('t2', 'k1')).toBe(false);
      expect(await store.revoke('t1', 'k1')).toBe(true);
      expect(await store.revoke('t1', 'k1')).toBe(false);
      await store.revokeAll('t1');
      expect(await store.list('t1')).toEqual([]);
      expect((await store.list('t2')).map((k) => k.id)).toEqual(['k3']);
    });
  });
}
