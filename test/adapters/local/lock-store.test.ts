import { describe, expect, it } from 'vitest';
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import type { LockEvent, LockState } from '../../../core/locks.js';

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

describe('SqliteLockStore', () => {
  it('stores a state with its reasons and appends history in order', async () => {
    const store = new SqliteLockStore(openDatabase(':memory:'));
    expect(await store.write(state(), 0, [event('lock', 1000)])).toBe(true);
    expect(await store.read('u1')).toEqual(state());
    expect(await store.write(state({ locked: false, until: null, timedUnlocks: 1, version: 2 }), 1, [event('timed-unlock', 61_000)])).toBe(true);
    expect((await store.history('u1')).map((e) => e.kind)).toEqual(['lock', 'timed-unlock']);
    expect((await store.read('u1'))?.timedUnlocks).toBe(1);
  });

  it('refuses a write based on a stale version and keeps its events out of the history', async () => {
    const store = new SqliteLockStore(openDatabase(':memory:'));
    await store.write(state(), 0, [event('lock', 1000)]);
    expect(await store.write(state({ permanent: true, version: 2 }), 0, [event('lock', 2000)])).toBe(false);
    expect((await store.read('u1'))?.permanent).toBe(false);
    expect(await store.history('u1')).toHaveLength(1);
  });

  it('lists locked users, optionally of one tenant', async () => {
    const store = new SqliteLockStore(openDatabase(':memory:'));
    await store.write(state(), 0, []);
    await store.write(state({ userId: 'u2', tenantId: 't2' }), 0, []);
    await store.write(state({ userId: 'u3', locked: false }), 0, []);
    expect((await store.listLocked({})).map((s) => s.userId).sort()).toEqual(['u1', 'u2']);
    expect((await store.listLocked({ tenantId: 't2' })).map((s) => s.userId)).toEqual(['u2']);
  });
});
