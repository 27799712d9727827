import { describe, expect, it } from 'vitest';
import { SqliteConfigStore } from '../../adapters/local/config-store.js';
import { SqliteLockStore } from '../../adapters/local/lock-store.js';
import { openDatabase } from '../../adapters/local/sqlite.js';
import { UserLocks, type LockEvent } from '../../core/locks.js';
import type { SettingOverrides } from '../../core/settings.js';
import { manualClock } from './counters.contract.js';

const MINUTE = 60_000;
const reason = { name: 'INVALID_RECIPIENT_LIMIT', evidence: { invalid: 5, limit: 5 } };

async function setup(settings: SettingOverrides = {}) {
  const clock = manualClock();
  const db = openDatabase(':memory:');
  const configStore = new SqliteConfigStore(db, clock);
  const tenant = await configStore.createTenant('acme');
  const user = await configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.example', domain: 'acme.example', passwordHash: null, settings });
  const events: LockEvent[] = [];
  const resets: string[] = [];
  const locks = new UserLocks({
    store: new SqliteLockStore(db),
    clock,
    configStore,
    onLockEvent: (event) => events.push(event),
    onUnlock: async (userId) => {
      resets.push(userId);
    },
  });
  return { clock, locks, user, tenant, events, resets, configStore };
}

describe('UserLocks lifecycle', () => {
  it('locks for lockMinutes, lifts the lock by timeout and counts it', async () => {
    const { clock, locks, user } = await setup({ lockMinutes: 30, maxTimedUnlocks: 2 });
    const start = clock.now();
    const outcome = await locks.lockAfterAbuse(user, [reason]);
    expect(outcome).toMatchObject({ locked: true, alreadyLocked: false, state: { permanent: false, until: start + 30 * MINUTE, reasons: [reason] } });
    clock.advance(30 * MINUTE - 1);
    expect((await locks.activeLock(user.id))?.until).toBe(start + 30 * MINUTE);
    clock.advance(1);
    expect(await locks.activeLock(user.id)).toBeUndefined();
    expect((await locks.status(user.id))?.timedUnlocks).toBe(1);
    expect((await locks.history(user.id)).map((e) => [e.kind, e.at])).toEqual([
      ['lock', start],
      ['timed-unlock', start + 30 * MINUTE],
    ]);
  });

  it('goes lock -> timed unlock -> ... -> permanent once maxTimedUnlocks are used up, then manual unlock resets', async () => {
    const { clock, locks, user, events, resets } = await setup({ lockMinutes: 10, maxTimedUnlocks: 2 });
    for (let round = 1; round <= 2; round++) {
      const outcome = await locks.lockAfterAbuse(user.id, [reason]);
      expect(outcome.locked && outcome.state.permanent).toBe(false);
      clock.advance(10 * MINUTE);
      expect(await locks.activeLock(user.id)).toBeUndefined();
      expect((await locks.status(user.id))?.timedUnlocks).toBe(round);
    }
    const third = await locks.lockAfterAbuse(user.id, [reason]);
    expect(third).toMatchObject({ locked: true, state: { permanent: true, until: null } });
    clock.advance(1000 * MINUTE);
    expect((await locks.activeLock(user.id))?.permanent).toBe(true);
    expect((await locks.listLocks({ tenantId: user.tenantId })).map((s) => s.userId)).toEqual([user.id]);

    const unlocked = await locks.unlock(user.id, 'operator', 'customer cleaned the compromised account');
    expect(unlocked).toMatchObject({ locked: false, permanent: false, timedUnlocks: 0 });
    expect(resets).toEqual([user.id]);
    expect(await locks.listLocks()).toEqual([]);
    // After the manual unlock the count starts again: the next lock is temporary.
    const again = await locks.lockAfterAbuse(user.id, [reason]);
    expect(again.locked && again.state.permanent).toBe(false);

    expect(events.map((e) => e.kind)).toEqual(['lock', 'timed-unlock', 'lock', 'timed-unlock', 'lock', 'manual-unlock', 'lock']);
    const manual = events.find((e) => e.kind === 'manual-unlock');
    expect(manual).toMatchObject({ by: 'operator', reason: 'customer cleaned the compromised account' });
  });

  it('with maxTimedUnlocks 0 the first automatic lock is permanent', async () => {
    const { locks, user } = await setup({ maxTimedUnlocks: 0 });
    const outcome = await locks.lockAfterAbuse(user, [reason]);
    expect(outcome.locked && outcome.state.permanent).toBe(true);
  });

  it('does not lock when autoLock is off (tenant default), and says so', async () => {
    const { locks, user, tenant, configStore, events } = await setup();
    await configStore.updateTenant(tenant.id, { settings: { autoLock: false } });
    expect(await locks.lockAfterAbuse(user.id, [reason])).toEqual({ locked: false, reason: 'autoLock-off' });
    expect(await locks.activeLock(user.id)).toBeUndefined();
    expect(events).toEqual([]);
  });

  it('keeps an existing lock as it is when abuse is reported again', async () => {
    const { clock, locks, user, events } = await setup({ lockMinutes: 10 });
    const first = await locks.lockAfterAbuse(user, [reason]);
    clock.advance(5 * MINUTE);
    const second = await locks.lockAfterAbuse(user, [{ name: 'VIRUS_FOUND', evidence: 'Eicar' }]);
    expect(second).toMatchObject({ locked: true, alreadyLocked: true });
    expect(second.locked && first.locked && second.state.until).toBe(first.locked && first.state.until);
    expect(events).toHaveLength(1);
  });

  it('two concurrent abuse reports lock once', async () => {
    const { locks, user, events } = await setup();
    await Promise.all([locks.lockAfterAbuse(user, [reason]), locks.lockAfterAbuse(user, [reason]), locks.lockAfterAbuse(user, [reason])]);
    expect(events.filter((e) => e.kind === 'lock')).toHaveLength(1);
    expect(await locks.history(user.id)).toHaveLength(1);
  });
});
