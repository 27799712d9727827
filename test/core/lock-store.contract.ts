// The contract every LockStore backend keeps (SQLite, DynamoDB): states with their reasons,
// history in order, who placed a lock by hand, optimistic concurrency on the version, listing
// locked users.
// Call `lockStoreContract(name, open)` from a backend's test file.
import { describe, expect, it } from 'vitest';
import type { LockEvent, LockState, LockStore } from '../../core/locks.js';

const state = (overrides: Partial<LockState> = {}): LockState => ({
  userId: 'u1',
  tenantId: 't1',
  identity: 'alice@example.org',
  locked: true,
  permanent: false,
  lockedAt: 1000,
  until: 61_000,
  reasons: [{ name: 'INVALID_RECIPIENT_LIMIT', evidence: { count: 5 } }],
  timedUnlocks: 0,
  placedBy: null,
  version: 1,
  ...overrides,
});
const event = (kind: LockEvent['kind'], at: number, userId = 'u1'): LockEvent => ({
  kind,
  userId,
  tenantId: 't1',
  identity: 'alice@example.org',
  at,
  timedUnlocks: 0,
});

export function lockStoreContract(backend: string, open: () => Promise<LockStore>): void {
  describe(`LockStore contract: ${backend}`, () => {
  it('stores a state with its reasons and appends history in order', async () => {
    const store = await open();
    expect(await store.write(state(), 0, [event('lock', 1000)])).toBe(true);
    expect(await store.read('u1')).toEqual(state());
    expect(await store.write(state({ locked: false, until: null, timedUnlocks: 1, version: 2 }), 1, [event('timed-unlock', 61_000)])).toBe(true);
    expect((await store.history('u1')).map((e) => e.kind)).toEqual(['lock', 'timed-unlock']);
    expect((await store.read('u1'))?.timedUnlocks).toBe(1);
  });

  it('refuses a write based on a stale version and keeps its events out of the history', async () => {
    const store = await open();
    await store.write(state(), 0, [event('lock', 1000)]);
    expect(await store.write(state({ permanent: true, version: 2 }), 0, [event('lock', 2000)])).toBe(false);
    expect((await store.read('u1'))?.permanent).toBe(false);
    expect(await store.history('u1')).toHaveLength(1);
  });

  it('lists locked users, optionally of one tenant', async () => {
    const store = await open();
    await store.write(state(), 0, []);
    await store.write(state({ userId: 'u2', tenantId: 't2' }), 0, []);
    await store.write(state({ userId: 'u3', locked: false }), 0, []);
    expect((await store.listLocked({})).map((s) => s.userId).sort()).toEqual(['u1', 'u2']);
    expect((await store.listLocked({ tenantId: 't2' })).map((s) => s.userId)).toEqual(['u2']);
  });

    it('lets exactly one of two concurrent writers based on the same version win', async () => {
      const store = await open();
      await store.write(state(), 0, [event('lock', 1000)]);
      const results = await Promise.all([
        store.write(state({ locked: false, until: null, version: 2 }), 1, [event('manual-unlock', 2000)]),
        store.write(state({ permanent: true, until: null, version: 2 }), 1, [event('lock', 2000)]),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.history('u1')).toHaveLength(2);
      expect((await store.read('u1'))?.version).toBe(2);
    });

    it('keeps who placed a lock by hand, and forgets it when the lock is lifted', async () => {
      const store = await open();
      await store.write(state({ placedBy: 'tenant' }), 0, [event('lock', 1000)]);
      expect((await store.read('u1'))?.placedBy).toBe('tenant');
      await store.write(state({ placedBy: 'operator', permanent: true, until: null, version: 2 }), 1, [event('lock', 2000)]);
      expect(await store.read('u1')).toEqual(state({ placedBy: 'operator', permanent: true, until: null, version: 2 }));
      expect((await store.listLocked({})).map((s) => s.placedBy)).toEqual(['operator']);
      await store.write(state({ locked: false, until: null, placedBy: null, version: 3 }), 2, [event('manual-unlock', 3000)]);
      expect((await store.read('u1'))?.placedBy).toBeNull();
      // An automatic lock has no placer.
      await store.write(state({ userId: 'u2' }), 0, [event('lock', 4000, 'u2')]);
      expect((await store.read('u2'))?.placedBy).toBeNull();
    });

    it('keeps reasons with string evidence, scores and the events\' fields', async () => {
      const store = await open();
      const reasons = [{ name: 'SPAM_VERDICT', score: 12.5, evidence: 'rspamd says spam' }, { name: 'MANUAL' }];
      const lock: LockEvent = { ...event('lock', 1000), reasons, until: null, permanent: true };
      await store.write(state({ reasons, permanent: true, until: null }), 0, [lock]);
      expect((await store.read('u1'))?.reasons).toEqual(reasons);
      const unlock: LockEvent = { ...event('manual-unlock', 2000), by: 'operator', reason: 'cleaned up' };
      await store.write(state({ locked: false, version: 2 }), 1, [unlock]);
      expect(await store.history('u1')).toEqual([lock, unlock]);
    });
  });
}
