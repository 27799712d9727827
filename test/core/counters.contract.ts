// The contract every CounterStore backend must pass (SQLite and DynamoDB): call
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
      expect(await store.buckets('invalid:u', DAY)).toEqual([
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

    it('aggregates uses per second: a bucket holds every use of its second, rounded up to the next whole second', async () => {
      const { store, clock } = await setup();
      const start = clock.now();
      await store.add('events', 1, HOUR);
      clock.advance(1);
      await store.add('events', 2, HOUR);
      clock.advance(500);
      await store.add('events', 3, HOUR);
      clock.advance(499);
      await store.add('events', 4, HOUR);
      expect(await store.buckets('events', HOUR)).toEqual([
        { at: start, units: 1 },
        { at: start + 1000, units: 9 },
      ]);
      expect(await store.total('events', HOUR)).toBe(10);
      clock.set(start + HOUR);
      expect(await store.total('events', HOUR)).toBe(9);
      clock.set(start + 1000 + HOUR);
      expect(await store.total('events', HOUR)).toBe(0);
    });

    it('gives an exact retry time to the second: a use made within a second counts until that second ends plus the window', async () => {
      const { store, clock } = await setup();
      const start = clock.now();
      const limit = { key: 'rate:exact', units: 1, limit: 2, windowMs: MINUTE };
      clock.set(start + 250);
      await store.reserve({ limits: [limit] });
      clock.set(start + 1999);
      await store.reserve({ limits: [limit] });
      clock.set(start + 30_000);
      const refused = await store.reserve({ limits: [limit] });
      // The first use (at +0.25 s) counts in the second ending at +1 s: it leaves at +61 s exactly.
      expect(refused).toEqual({ ok: false, refused: { key: 'rate:exact', limit: 2, used: 2, retryAt: start + 1000 + MINUTE } });
      clock.set(start + 1000 + MINUTE - 1);
      const stillRefused = await store.reserve({ limits: [limit] });
      expect(stillRefused.ok === false && stillRefused.refused.retryAt).toBe(start + 1000 + MINUTE);
      clock.set(start + 1000 + MINUTE);
      expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
      const next = await store.reserve({ limits: [limit] });
      // The second use (at +1.999 s) leaves at +62 s.
      expect(next.ok === false && next.refused.retryAt).toBe(start + 2000 + MINUTE);
    });

    it('never lets more than the limit through in any window of exactly windowMs, at any millisecond', async () => {
      const { store, clock } = await setup();
      const start = clock.now();
      const limit = { key: 'rate:edge', units: 1, limit: 3, windowMs: 10_000 };
      const admitted: number[] = [];
      // Attempts every 337 ms over half a minute: admissions near second edges are the risky ones.
      for (let t = start + 999; t < start + 30_000; t += 337) {
        clock.set(t);
        if ((await store.reserve({ limits: [limit] })).ok) admitted.push(t);
      }
      for (const [i, first] of admitted.entries()) {
        expect(admitted.filter((t) => t >= first && t < first + limit.windowMs).length, `window from ${first - start} ms (admission ${i})`).toBeLessThanOrEqual(3);
      }
      expect(admitted.length).toBeGreaterThanOrEqual(8);
    }, 60_000);

    it('keeps counting a window of many uses exactly, and subtracts them as their seconds leave', async () => {
      const { store, clock } = await setup();
      const start = clock.now();
      const perSecond = 10;
      const uses = 50 * perSecond;
      const limit = { key: 'rate:busy', units: 1, limit: uses, windowMs: MINUTE };
      // 500 uses over 50 seconds, none on a whole second; then the limit is reached.
      for (let i = 0; i < uses; i++) {
        clock.set(start + Math.floor(i / perSecond) * 1000 + (i % perSecond) * 95 + 5);
        expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
      }
      clock.set(start + 55_000);
      const refused = await store.reserve({ limits: [limit] });
      // The first second's uses (+0.005 s to +0.860 s) count in the second ending at +1 s.
      expect(refused).toEqual({ ok: false, refused: { key: 'rate:busy', limit: uses, used: uses, retryAt: start + 1000 + MINUTE } });
      expect((await store.buckets('rate:busy', MINUTE)).length).toBe(50);
      clock.set(start + 1000 + MINUTE);
      expect(await store.total('rate:busy', MINUTE)).toBe(uses - perSecond);
      for (let i = 0; i < perSecond; i++) expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
      expect((await store.reserve({ limits: [limit] })).ok).toBe(false);
      clock.set(start + 30_000 + MINUTE);
      expect(await store.total('rate:busy', MINUTE)).toBe(20 * perSecond + perSecond);
    }, 120_000);

    it('a held member released while another transaction still holds it stays counted', async () => {
      const { store } = await setup();
      const distinct = (member: string) => [{ key: 'shared', members: [member], limit: 1, windowMs: DAY }];
      await store.reserve({ limits: [], distinct: distinct('a@x.org'), hold: { transaction: 's1', item: 'a@x.org' } });
      await store.reserve({ limits: [], distinct: distinct('a@x.org'), hold: { transaction: 's2', item: 'a@x.org' } });
      await store.settle('s1', []);
      expect(await store.countDistinct('shared', DAY)).toBe(1);
      expect((await store.reserve({ limits: [], distinct: distinct('b@x.org') })).ok).toBe(false);
      await store.settle('s2', []);
      expect(await store.countDistinct('shared', DAY)).toBe(0);
    });

    it('a member kept by one transaction stays counted when another transaction gives its own use of it back', async () => {
      const { store, clock } = await setup();
      const distinct = (member: string) => [{ key: 'kept', members: [member], limit: 1, windowMs: DAY }];
      await store.reserve({ limits: [], distinct: distinct('a@x.org'), hold: { transaction: 's1', item: 'a@x.org' } });
      await store.settle('s1', ['a@x.org']);
      clock.advance(MINUTE);
      await store.reserve({ limits: [], distinct: distinct('a@x.org'), hold: { transaction: 's2', item: 'a@x.org' } });
      await store.settle('s2', []);
      expect(await store.countDistinct('kept', DAY)).toBe(1);
      expect((await store.reserve({ limits: [], distinct: distinct('b@x.org') })).ok).toBe(false);
    });

    it('a sighting given back moves its member back to its kept use, and it leaves the window from there', async () => {
      const { store, clock } = await setup();
      const start = clock.now();
      const distinct = (member: string) => [{ key: 'back', members: [member], limit: 100, windowMs: DAY }];
      await store.reserve({ limits: [], distinct: distinct('y@x.org') });
      clock.set(start + HOUR);
      await store.reserve({ limits: [], distinct: distinct('m@x.org'), hold: { transaction: 's1', item: 'm@x.org' } });
      await store.settle('s1', ['m@x.org']);
      clock.set(start + 2 * HOUR);
      await store.reserve({ limits: [], distinct: distinct('m@x.org'), hold: { transaction: 's2', item: 'm@x.org' } });
      // y leaves; the oldest member is now m, seen (held) at +2 h.
      clock.set(start + DAY);
      await store.reserve({ limits: [], distinct: distinct('z@x.org') });
      expect(await store.countDistinct('back', DAY)).toBe(2);
      // m counts from its kept use at +1 h again, and leaves a day after it.
      await store.settle('s2', []);
      clock.set(start + HOUR + DAY - 1);
      expect(await store.countDistinct('back', DAY)).toBe(2);
      clock.set(start + HOUR + DAY);
      expect(await store.countDistinct('back', DAY)).toBe(1);
    });

    it('releases two held uses of one transaction in the same second exactly', async () => {
      const { store } = await setup();
      const limit = { key: 'rate:same', units: 1, limit: 10, windowMs: HOUR };
      await store.reserve({ limits: [limit] });
      await store.reserve({ limits: [limit], hold: { transaction: 's', item: 'a@x.org' } });
      await store.reserve({ limits: [limit], hold: { transaction: 's', item: 'b@x.org' } });
      await store.reserve({ limits: [limit], hold: { transaction: 's', item: 'c@x.org' } });
      await store.settle('s', ['b@x.org']);
      expect(await store.total('rate:same', HOUR)).toBe(2);
      expect(await store.buckets('rate:same', HOUR)).toEqual([{ at: manualClock().now(), units: 2 }]);
    });

    it('reset forgets held uses too: settling them afterwards changes nothing', async () => {
      const { store } = await setup();
      const limit = { key: 'rate:reset', units: 1, limit: 10, windowMs: HOUR };
      await store.reserve({ limits: [limit], hold: { transaction: 's', item: 'a@x.org' } });
      await store.reset('rate:reset');
      await store.reserve({ limits: [limit] });
      await store.settle('s', []);
      expect(await store.total('rate:reset', HOUR)).toBe(1);
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
