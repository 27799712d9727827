// The contract every HoldStore backend must pass (SQLite, DynamoDB): call
// `holdStoreContract(name, factory)` from a backend's test file.
import { afterEach, describe, expect, it } from 'vitest';
import type { HeldMessage, HoldStore } from '../../core/holds.js';

export interface HoldStoreFixture {
  store: HoldStore;
  close(): Promise<void> | void;
}

const T0 = Date.UTC(2026, 11, 1, 12);
const MINUTE = 60_000;

function held(n: number, overrides: Partial<HeldMessage> = {}): HeldMessage {
  return {
    id: `M${n}:deliver:abc`,
    messageId: `M${n}`,
    tenantId: 't1',
    userId: 'u1',
    identity: 'alice@acme.test',
    stage: 'deliver',
    body: `{"job":${n}}`,
    blobKey: `messages/M${n}.eml`,
    reason: 'locked',
    heldAt: T0 + n * MINUTE,
    ...overrides,
  };
}

export function holdStoreContract(name: string, open: () => Promise<HoldStoreFixture> | HoldStoreFixture): void {
  describe(`HoldStore contract: ${name}`, () => {
    let fixture: HoldStoreFixture | undefined;
    const setup = async (): Promise<HoldStore> => {
      fixture = await open();
      return fixture.store;
    };
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });

    it('adds a held job once, keeps its body verbatim, and lists a sender’s mail oldest first', async () => {
      const store = await setup();
      expect(await store.add(held(2))).toBe(true);
      expect(await store.add(held(1))).toBe(true);
      expect(await store.add(held(1, { body: 'changed' }))).toBe(false);
      await store.add(held(3, { userId: 'u2', tenantId: 't2' }));
      expect((await store.list({ userId: 'u1' })).map((item) => [item.messageId, item.body])).toEqual([
        ['M1', '{"job":1}'],
        ['M2', '{"job":2}'],
      ]);
      expect((await store.list({ tenantId: 't2' })).map((item) => item.messageId)).toEqual(['M3']);
      expect((await store.heldSenders()).sort()).toEqual(['u1', 'u2']);
    });

    it('gives each held job to one claim only, until that claim is stale', async () => {
      const store = await setup();
      for (const n of [1, 2, 3]) await store.add(held(n));
      const first = await store.claim('u1', 'A', T0, T0 - 10 * MINUTE);
      expect(first).toHaveLength(3);
      expect(await store.claim('u1', 'B', T0 + MINUTE, T0 + MINUTE - 10 * MINUTE)).toEqual([]);
      // Removing needs the claim that holds the row.
      await store.remove('M1:deliver:abc', 'B');
      expect(await store.list({ userId: 'u1' })).toHaveLength(3);
      await store.remove('M1:deliver:abc', 'A');
      expect(await store.list({ userId: 'u1' })).toHaveLength(2);
      // A died: eleven minutes later its claim is stale and B takes the rest over.
      const later = T0 + 11 * MINUTE;
      expect((await store.claim('u1', 'B', later, later - 10 * MINUTE)).map((item) => item.messageId)).toEqual(['M2', 'M3']);
      await store.remove('M2:deliver:abc', 'A');
      expect(await store.list({ userId: 'u1' })).toHaveLength(2);
    });

    it('splits held jobs between claims taken at once, never giving one job to two', async () => {
      const store = await setup();
      for (let n = 1; n <= 30; n++) await store.add(held(n));
      const claims = await Promise.all(['A', 'B', 'C'].map((claim) => store.claim('u1', claim, T0, T0 - 10 * MINUTE)));
      const ids = claims.flat().map((item) => item.id);
      expect(ids).toHaveLength(30);
      expect(new Set(ids).size).toBe(30);
      // A claim removes only what it holds: what A took stays when B removes it, goes when A does.
      const [byA = [], byB = []] = claims;
      for (const item of byA) await store.remove(item.id, 'B');
      expect(await store.list({ userId: 'u1' })).toHaveLength(30);
      for (const item of byA) await store.remove(item.id, 'A');
      expect(await store.list({ userId: 'u1' })).toHaveLength(30 - byA.length);
      for (const item of byB) await store.remove(item.id, 'B');
      expect(await store.list({ userId: 'u1' })).toHaveLength(30 - byA.length - byB.length);
    });

    it('lists held mail across tenants oldest first, up to a limit', async () => {
      const store = await setup();
      for (const n of [5, 3, 1]) await store.add(held(n, { userId: `u${n}0`, tenantId: `t${n}0` }));
      await store.add(held(2));
      await store.add(held(4));
      expect((await store.list({})).map((item) => item.messageId)).toEqual(['M1', 'M2', 'M3', 'M4', 'M5']);
      expect((await store.list({ limit: 2 })).map((item) => item.messageId)).toEqual(['M1', 'M2']);
      expect((await store.list({ tenantId: 't1', limit: 1 })).map((item) => item.messageId)).toEqual(['M2']);
      expect(await store.list({ userId: 'nobody' })).toEqual([]);
    });

    it('keeps senders on hold, once each', async () => {
      const store = await setup();
      await store.putSenderHold({ userId: 'u1', tenantId: 't1', identity: 'alice@acme.test', by: 'operator', at: T0 });
      await store.putSenderHold({ userId: 'u1', tenantId: 't1', identity: 'alice@acme.test', by: 'tenant-key:k', at: T0 + 1 });
      expect(await store.senderHold('u1')).toEqual({ userId: 'u1', tenantId: 't1', identity: 'alice@acme.test', by: 'operator', at: T0 });
      expect(await store.removeSenderHold('u1')).toBe(true);
      expect(await store.removeSenderHold('u1')).toBe(false);
      expect(await store.senderHold('u1')).toBeUndefined();
    });

    it('sums held mail per sender and reason, counting what is overdue', async () => {
      const store = await setup();
      for (const n of [1, 2, 3]) await store.add(held(n));
      await store.add(held(4, { reason: 'manual' }));
      await store.add(held(5, { userId: 'u2', tenantId: 't2', identity: 'bob@globex.test' }));
      const summary = await store.summary({ overdueBefore: T0 + 2 * MINUTE + 1 });
      expect(summary).toEqual(
        expect.arrayContaining([
          { tenantId: 't1', userId: 'u1', identity: 'alice@acme.test', reason: 'locked', count: 3, oldestAt: T0 + MINUTE, overdue: 2 },
          { tenantId: 't1', userId: 'u1', identity: 'alice@acme.test', reason: 'manual', count: 1, oldestAt: T0 + 4 * MINUTE, overdue: 0 },
          { tenantId: 't2', userId: 'u2', identity: 'bob@globex.test', reason: 'locked', count: 1, oldestAt: T0 + 5 * MINUTE, overdue: 0 },
        ]),
      );
      expect(summary).toHaveLength(3);
      expect(await store.summary({ tenantId: 't2', overdueBefore: T0 })).toHaveLength(1);
      expect(await store.summary({ userId: 'u1', overdueBefore: T0 })).toHaveLength(2);
    });
  });
}
