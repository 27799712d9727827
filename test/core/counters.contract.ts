// The contract every CounterStore backend must pass (SQLite now, DynamoDB later): call
// `counterStoreContract(name, factory)` from a backend's test file.
import { afterEach, describe, expect, it } from 'vitest';
import type { CounterStore } from '../../core/counters.js';

export interface ManualClock {
  now(): number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function manualClock(start = Date.UTC(2026, 10, 25, 14, 0, 0)): ManualClock {
  let current = start;
  return {
    now: () => current,
    set: (ms) => {
      current = ms;
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

export interface CounterStoreFixture {
  store: CounterStore;
  close(): Promise<void> | void;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function counterStoreContract(name: string, open: (clock: ManualClock) => Promise<CounterStoreFixture> | CounterStoreFixture): void {
  describe(`CounterStore contract: ${name}`, () => {
    let fixture: CounterStoreFixture | undefined;
    const setup = async (): Promise<{ store: CounterStore; clock: ManualClock }> => {
      const clock = manualClock();
      fixture = await open(clock);
      return { store: fixture.store, clock };
    };
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });

    it('admits units up to the limit and refuses the one that would exceed it', async () => {
      const { store } = await setup();
      const limit = { key: 'rate:a', units: 1, limit: 3, windowMs: MINUTE };
      for (let i = 0; i < 3; i++) expect(await store.reserve({ limits: [limit] })).toEqual({ ok: true });
      const refused = await store.reserve({ limits: [limit] });
      expect(refused.ok).toBe(false);
      if (!refused.ok) expect(refused.refused).toMatchObject({ key: 'rate:a', limit: 3, used: 3 });
      expect(await store.total('rate:a', MINUTE)).toBe(3);
    });

    it('counts a multi-unit consumption whole: 2 units do not fit when 1 is left', async () => {
      const { store } = await setup();
      expect((await store.reserve({ limits: [{ key: 'k', units: 4, limit: 5, windowMs: HOUR }] })).ok).toBe(true);
      expect((await store.reserve({ limits: [{ key: 'k', units: 2, limit: 5, windowMs: HOUR }] })).ok).toBe(false);
      expect((await store.reserve({ limits: [{ key: 'k', units: 1, limit: 5, windowMs: HOUR }] })).ok).toBe(true);
    });

    it('slides: an entry leaves the window exactly one window after it was made, and retryAt says when', async () => {
      const { store, clock } = await setup();
      const limit = { key: 'rate:hour', units: 1, limit: 2, windowMs: HOUR };
      const first = clock.now();
      await store.reserve({ limits: [limit] });
      clock.advance(10 * MINUTE);
      await store.reserve({ limits: [limit] });
      clock.advance(10 * MINUTE);
      const refused = await store.reserve({ limits: [limit] });
      expect(refused).toEqual({ ok: false, refused: { key: 'rate:hour', limit: 2, used: 2, retryAt: first + HOUR } });
      clock.set(first + HOUR - 1);
      expect((await store.reserve({ limits: [limit] })).ok).toBe(false);
      clock.set(first + HOUR);
      expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
    });

    it('is all-or-nothing across several limits: a refused hour limit leaves the minute limit untouched', async () => {
      const { store } = await setup();
      const minute = { key: 'm', units: 1, limit: 10, windowMs: MINUTE };
      const hour = { key: 'h', units: 1, limit: 1, windowMs: HOUR };
      expect((await store.reserve({ limits: [minute, hour] })).ok).toBe(true);
      const refused = await store.reserve({ limits: [minute, hour] });
      expect(refused.ok === false && refused.refused.key).toBe('h');
      expect(await store.total('m', MINUTE)).toBe(1);
    });

    it('counts distinct members exactly: the same member twice counts once', async () => {
      const { store } = await setup();
      const distinct = (members: string[]) => ({ key: 'rcpt', members, limit: 2, windowMs: DAY });
      expect((await store.reserve({ limits: [], distinct: [distinct(['a@x.org'])] })).ok).toBe(true);
      expect((await store.reserve({ limits: [], distinct: [distinct(['a@x.org'])] })).ok).toBe(true);
      expect((await store.reserve({ limits: [], distinct: [distinct(['b@x.org'])] })).ok).toBe(true);
      expect(await store.countDistinct('rcpt', DAY)).toBe(2);
      expect((await store.reserve({ limits: [], distinct: [distinct(['a@x.org', 'b@x.org'])] })).ok).toBe(true);
      const refused = await store.reserve({ limits: [], distinct: [distinct(['c@x.org'])] });
      expect(refused.ok).toBe(false);
    });

    it('rolls distinct members over 24 hours: a member seen again stays counted from its last use', async () => {
      const { store, clock } = await setup();
      const start = clock.now();
      const distinct = (members: string[]) => ({ limits: [], distinct: [{ key: 'r', members, limit: 2, windowMs: DAY }] });
      await store.reserve(distinct(['a@x.org']));
      clock.advance(HOUR);
      await store.reserve(distinct(['b@x.org']));
      clock.advance(HOUR);
      await store.reserve(distinct(['a@x.org'])); // a is refreshed at start + 2h
      const refused = await store.reserve(distinct(['c@x.org']));
      // b (last seen start+1h) is the oldest; c fits when b leaves.
      expect(refused).toEqual({ ok: false, refused: { key: 'r', limit: 2, used: 2, retryAt: start + HOUR + DAY } });
      clock.set(start + HOUR + DAY);
      expect((await store.reserve(distinct(['c@x.org']))).ok).toBe(true);
      expect((await store.reserve(distinct(['d@x.org']))).ok).toBe(false);
    });

    it('releases held reservations that are not kept, and keeps the accepted ones', async () => {
      const { store } = await setup();
      const limit = { key: 'rate', units: 1, limit: 3, windowMs: HOUR };
      const distinct = (member: string) => [{ key: 'd', members: [member], limit: 10, windowMs: DAY }];
      await store.reserve({ limits: [limit], distinct: distinct('a@x.org'), hold: { transaction: 's1', item: 'a@x.org' } });
      await store.reserve({ limits: [limit], distinct: distinct('b@x.org'), hold: { transaction: 's1', item: 'b@x.org' } });
      await store.reserve({ limits: [limit], distinct: distinct('c@x.org'), hold: { transaction: 's2', item: 'c@x.org' } });
      expect((await store.reserve({ limits: [limit] })).ok).toBe(false);
      await store.settle('s1', ['a@x.org']);
      expect(await store.total('rate', HOUR)).toBe(2);
      expect(await store.countDistinct('d', DAY)).toBe(2);
      await store.settle('s1', []); // settling again changes nothing: a was committed
      await store.settle('s2', []);
      expect(await store.total('rate', HOUR)).toBe(1);
      expect(await store.countDistinct('d', DAY)).toBe(1);
    });

    it('adds events unconditionally and totals them per window; reset forgets a key', async () => {
      const { store, clock } = await setup();
      expect(await store.add('invalid:u', 1, DAY)).toBe(1);
      clock.advance(HOUR);
      expect(await store.add('invalid:u', 2, DAY)).toBe(3);
      expect(await store.entries('invalid:u', DAY)).toEqual([
        { at: clock.now() - HOUR, units: 1 },
        { at: clock.now(), units: 2 },
      ]);
      clock.advance(DAY - HOUR);
      expect(await store.total('invalid:u', DAY)).toBe(2);
      await store.reset('invalid:u');
      expect(await store.total('invalid:u', DAY)).toBe(0);
    });

    it('purges expired entries (TTL) and keeps live ones', async () => {
      const { store, clock } = await setup();
      await store.add('short', 1, MINUTE);
      await store.add('long', 1, DAY);
      clock.advance(MINUTE);
      expect(await store.purgeExpired()).toBe(1);
      expect(await store.total('long', DAY)).toBe(1);
    });

    it('never exceeds a limit under 50 parallel attempts: exactly L succeed', async () => {
      const { store } = await setup();
      const limit = { key: 'burst', units: 1, limit: 17, windowMs: MINUTE };
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.reserve({ limits: [limit], distinct: [{ key: 'burst-rcpt', members: [`r${i}@x.org`], limit: 1000, windowMs: DAY }] }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(17);
      expect(await store.total('burst', MINUTE)).toBe(17);
      expect(await store.countDistinct('burst-rcpt', DAY)).toBe(17);
    });
  });
}
