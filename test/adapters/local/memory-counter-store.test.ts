// The relay's in-memory rate-limit counters: the CounterStore contract, the same answers and the
// same rows as the SQL store over long random sequences of calls, the rows written back and read
// again, and the relay's split between memory and SQLite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CounterStore } from '../../../core/counters.js';
import { SqliteCounterStore } from '../../../adapters/local/counter-store.js';
import { MemberBudgetExceeded, MemoryCounterStore, type CounterRows } from '../../../adapters/local/memory-counter-store.js';
import { RelayCounterStore } from '../../../adapters/local/relay-counters.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import { createLogger } from '../../../core/log.js';
import { counterStoreContract, manualClock, type ManualClock } from '../../core/counters.contract.js';
import { seededRandom as random } from '../../helpers/random.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

counterStoreContract('in memory (the relay thread)', (clock) => ({ store: new MemoryCounterStore(clock), close: () => undefined }));

counterStoreContract('the relay: rate: keys in memory, the others in SQLite', (clock) => {
  const db = openDatabase(':memory:');
  const relay = new RelayCounterStore(new MemoryCounterStore(clock), new SqliteCounterStore(db, clock), ['rate:'], createLogger('test'));
  return {
    store: relay,
    close: () => {
      db.close();
    },
  };
});

/** The counter tables' rows, sorted, as rowsWithPrefixes reads them. */
async function rowsOf(db: Db, clock: ManualClock): Promise<CounterRows> {
  const rows = await new SqliteCounterStore(db, clock).rowsWithPrefixes(['']);
  rows.buckets.sort((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1]);
  rows.members.sort((a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]));
  rows.heads.sort((a, b) => a[0].localeCompare(b[0]));
  return rows;
}

type Step = (store: CounterStore) => Promise<unknown>;

/** A random call: reservations with and without holds, settles, adds, reads, resets, purges; the clock moves between them. */
function randomStep(next: () => number, open: Set<string>): { step: Step; advance: number } {
  const pick = <T,>(items: T[]): T => items[Math.floor(next() * items.length)] as T;
  const key = pick(['rate:minute:u', 'rate:hour:u', 'rate:minute:ip']);
  const windowMs = key.startsWith('rate:minute') ? MINUTE : HOUR;
  const member = pick(['a@x.org', 'b@x.org', 'c@x.org', 'd@x.org', 'e@x.org', 'f@x.org']);
  const transaction = pick(['s1', 's2', 's3']);
  const advance = pick([0, 0, 1, 250, 999, 1000, 7_000, 30_000, 10 * MINUTE]);
  const roll = next();
  let step: Step;
  if (roll < 0.45) {
    const hold = next() < 0.7 ? { transaction, item: member } : undefined;
    if (hold) open.add(transaction);
    const request = {
      limits: [{ key, units: pick([1, 1, 2]), limit: pick([3, 5, 8]), windowMs }],
      distinct: [{ key: 'rcpt:day:u', members: [member], limit: pick([2, 4]), windowMs: pick([DAY, 2 * MINUTE]) }],
      ...(hold ? { hold } : {}),
    };
    step = async (store) => store.reserve(request);
  } else if (roll < 0.65) {
    open.delete(transaction);
    const keep = next() < 0.5 ? [member] : [];
    step = async (store) => store.settle(transaction, keep);
  } else if (roll < 0.72) step = (store) => store.add(key, 1, windowMs);
  else if (roll < 0.8) step = (store) => store.total(key, windowMs);
  else if (roll < 0.85) step = (store) => store.buckets(key, windowMs);
  else if (roll < 0.9) {
    const distinctWindow = pick([DAY, 2 * MINUTE]);
    step = (store) => store.countDistinct('rcpt:day:u', distinctWindow);
  } else if (roll < 0.93) {
    const reset = pick([key, 'rcpt:day:u']);
    step = (store) => store.reset(reset);
  } else step = (store) => store.purgeExpired();
  return { step, advance };
}

/**
 * A seeded random run: its clock and calls, an SQL store to compare with (`reference`) and a
 * database for the memory store's written rows (`written`).
 */
function randomRun(seed: number) {
  const clock = manualClock();
  const reference = openDatabase(':memory:');
  const written = openDatabase(':memory:');
  return {
    clock,
    next: random(seed),
    open: new Set<string>(),
    reference,
    written,
    sql: new SqliteCounterStore(reference, clock),
    sink: new SqliteCounterStore(written, clock),
    close: () => {
      reference.close();
      written.close();
    },
  };
}

describe('MemoryCounterStore against SqliteCounterStore', () => {
  it('gives the same answer to every call, and its written rows are the SQL store\'s rows, over 3 × 1,500 random calls', async () => {
    for (const seed of [1, 2, 3]) {
      const { clock, next, open, reference, written, sql, sink, close } = randomRun(seed);
      const memory = new MemoryCounterStore(clock);
      for (let i = 0; i < 1500; i++) {
        const { step, advance } = randomStep(next, open);
        expect(await step(memory), `seed ${seed}, call ${i}`).toEqual(await step(sql));
        clock.advance(advance);
        if (i % 50 === 49) {
          await sink.applyChanges(memory.takeChanges());
          expect(await rowsOf(written, clock), `rows after call ${i} (seed ${seed})`).toEqual(await rowsOf(reference, clock));
        }
      }
      close();
    }
  }, 60_000);

  it('read back from its written rows (a restart), answers as the SQL store that never stopped', async () => {
    const { clock, next, open, sql, sink, close } = randomRun(7);
    let memory = new MemoryCounterStore(clock);
    for (let i = 0; i < 2000; i++) {
      if (i % 400 === 399) {
        // Holds live as long as their SMTP transaction: settle them all before the restart.
        for (const transaction of open) for (const store of [memory, sql]) await store.settle(transaction, []);
        open.clear();
        await sink.applyChanges(memory.takeChanges());
        memory = new MemoryCounterStore(clock);
        memory.load(await sink.rowsWithPrefixes(['rate:', 'rcpt:day:']));
      }
      const { step, advance } = randomStep(next, open);
      expect(await step(memory), `call ${i}`).toEqual(await step(sql));
      clock.advance(advance);
    }
    close();
  }, 60_000);

  it('keeps its Maps in time order, so that a busy hour key expires from the front', async () => {
    const clock = manualClock();
    const store = new MemoryCounterStore(clock);
    const limit = { key: 'rate:hour:busy', units: 1, limit: 1_000_000, windowMs: HOUR };
    for (let i = 0; i < 3600; i++) {
      await store.reserve({ limits: [limit] });
      clock.advance(1000);
    }
    // The first use (at +0 s) left at +3,600 s.
    expect(await store.total(limit.key, HOUR)).toBe(3599);
    clock.advance(30 * MINUTE);
    expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
    expect(await store.total(limit.key, HOUR)).toBe(1800);
    expect((await store.buckets(limit.key, HOUR)).map((bucket) => bucket.at)).toEqual([...(await store.buckets(limit.key, HOUR)).map((bucket) => bucket.at)].sort((a, b) => a - b));
  });
});

describe('MemoryCounterStore: its memory for distinct recipients is bounded', () => {
  const distinct = (key: string, member: string) => ({ limits: [], distinct: [{ key, members: [member], limit: 1_000_000, windowMs: DAY }] });

  it('refuses new members, past the budget, to the key that holds a large share of it; small keys go on up to the hard limit; all of it comes back once the members leave', async () => {
    const clock = manualClock();
    const store = new MemoryCounterStore(clock, { members: 1000 });
    for (let i = 0; i < 1000; i++) expect((await store.reserve(distinct('rcpt:day:user:flood', `r${i}@x.org`))).ok).toBe(true);
    expect(store.members).toBe(1000);
    // The flooding sender: refused, nothing reserved.
    await expect(store.reserve(distinct('rcpt:day:user:flood', 'more@x.org'))).rejects.toThrow(MemberBudgetExceeded);
    await expect(store.reserve(distinct('rcpt:day:user:flood', 'more@x.org'))).rejects.toThrow(/rcpt:day:user:flood holds 1000: no new recipient for it/);
    expect(await store.countDistinct('rcpt:day:user:flood', DAY)).toBe(1000);
    // A recipient it already counts takes no memory: admitted.
    expect((await store.reserve(distinct('rcpt:day:user:flood', 'r7@x.org'))).ok).toBe(true);
    // Its neighbours, each with a few recipients, are still served, up to 1.25 times the budget.
    for (let i = 0; i < 250; i++) expect((await store.reserve(distinct(`rcpt:day:user:small${i % 50}`, `n${i}@x.org`))).ok, `small ${i}`).toBe(true);
    await expect(store.reserve(distinct('rcpt:day:user:small1', 'last@x.org'))).rejects.toThrow(MemberBudgetExceeded);
    expect(store.members).toBe(1250);
    // A day later every member has left: memory is free again.
    clock.advance(DAY);
    await store.purgeExpired();
    expect(store.members).toBe(0);
    expect((await store.reserve(distinct('rcpt:day:user:flood', 'more@x.org'))).ok).toBe(true);
  });

  it('counts its members exactly through holds given back, resets, rebuilt windows and restarts (3 × 1,500 random calls)', async () => {
    for (const seed of [4, 5, 6]) {
      const { clock, next, open, written, sink, close } = randomRun(seed);
      const memory = new MemoryCounterStore(clock);
      for (let i = 0; i < 1500; i++) {
        const { step, advance } = randomStep(next, open);
        await step(memory);
        clock.advance(advance);
        if (i % 50 === 49) {
          await sink.applyChanges(memory.takeChanges());
          expect(memory.members, `seed ${seed}, call ${i}`).toBe((await rowsOf(written, clock)).members.length);
        }
      }
      close();
    }
  }, 60_000);
});

describe('RelayCounterStore', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  });
  const open = (clock: ManualClock): { db: Db; shared: SqliteCounterStore; relay: RelayCounterStore; memory: MemoryCounterStore } => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-relay-counters-'));
    const db = openDatabase(join(dir, 'outpost.db'));
    cleanups.push(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const shared = new SqliteCounterStore(db, clock);
    const memory = new MemoryCounterStore(clock);
    return { db, shared, memory, relay: new RelayCounterStore(memory, shared, ['rate:', 'rcpt:day:'], createLogger('test'), 60_000) };
  };
  const limit = { key: 'rate:hour:user:u1', units: 1, limit: 3, windowMs: HOUR };

  it('keeps the rate-limit keys in memory until it writes them, and a relay started on the same file reads them back', async () => {
    const clock = manualClock();
    const { db, shared, relay } = open(clock);
    await relay.start();
    for (let i = 0; i < 3; i++) expect((await relay.reserve({ limits: [limit], hold: { transaction: 's', item: `r${i}@x.org` } })).ok).toBe(true);
    await relay.settle('s', ['r0@x.org', 'r1@x.org', 'r2@x.org']);
    // Not in SQLite before the write: the SQL store's own view is empty.
    expect(await shared.total(limit.key, HOUR)).toBe(0);
    await relay.flush();
    expect(await shared.total(limit.key, HOUR)).toBe(3);
    await relay.close();
    const restarted = new RelayCounterStore(new MemoryCounterStore(clock), shared, ['rate:', 'rcpt:day:'], createLogger('test'), 60_000);
    await restarted.start();
    const refused = await restarted.reserve({ limits: [limit] });
    expect(refused).toEqual({ ok: false, refused: { key: limit.key, limit: 3, used: 3, retryAt: clock.now() + HOUR } });
    await restarted.close();
  });

  it('writes what changed when it closes, whenever the last write was', async () => {
    const clock = manualClock();
    const { db, shared, relay } = open(clock);
    await relay.start();
    await relay.reserve({ limits: [limit], distinct: [{ key: 'rcpt:day:user:u1', members: ['a@x.org'], limit: 10, windowMs: DAY }] });
    expect(await shared.total(limit.key, HOUR)).toBe(0);
    await relay.close();
    expect(await shared.total(limit.key, HOUR)).toBe(1);
    expect(await shared.countDistinct('rcpt:day:user:u1', DAY)).toBe(1);
  });

  it('sends the other keys to SQLite at once, and settles a transaction in both stores', async () => {
    const clock = manualClock();
    const { db, shared, relay } = open(clock);
    await relay.start();
    await relay.add('invalid:user:u1', 2, DAY);
    expect(await shared.total('invalid:user:u1', DAY)).toBe(2);
    const bounceLimit = { key: 'bounce:hour:x', units: 1, limit: 1, windowMs: HOUR };
    await relay.reserve({ limits: [bounceLimit], hold: { transaction: 's', item: 'a@x.org' } });
    await relay.reserve({ limits: [limit], hold: { transaction: 's', item: 'a@x.org' } });
    await relay.settle('s', []);
    expect(await shared.total(bounceLimit.key, HOUR)).toBe(0);
    expect(await relay.total(limit.key, HOUR)).toBe(0);
    await relay.close();
  });

  it('refuses a reservation that mixes a rate-limit key with a shared one (it could not be one atomic step)', async () => {
    const clock = manualClock();
    const { db, shared, relay } = open(clock);
    await expect(relay.reserve({ limits: [limit, { key: 'bounce:hour:x', units: 1, limit: 5, windowMs: HOUR }] })).rejects.toThrow(/mixes rate-limit keys with shared ones/);
    expect(await relay.total(limit.key, HOUR)).toBe(0);
    expect(await shared.total('bounce:hour:x', HOUR)).toBe(0);
  });

  it('keeps what it could not write (a read-only database) and writes it with the next flush', async () => {
    const clock = manualClock();
    const { db, shared, relay } = open(clock);
    await relay.reserve({ limits: [limit] });
    db.pragma('query_only = ON');
    await relay.flush();
    expect(await shared.total(limit.key, HOUR)).toBe(0);
    db.pragma('query_only = OFF');
    // Nothing changed since: the rows of the failed write go with the next.
    await relay.flush();
    expect(await shared.total(limit.key, HOUR)).toBe(1);
    expect(await shared.buckets(limit.key, HOUR)).toEqual([{ at: clock.now(), units: 1 }]);
  });

  it('drops from memory, and from the tables, the keys whose uses all left their window', async () => {
    const clock = manualClock();
    const { db, relay } = open(clock);
    await relay.reserve({ limits: [limit], distinct: [{ key: 'rcpt:day:user:u1', members: ['a@x.org'], limit: 10, windowMs: DAY }] });
    await relay.flush();
    expect((await rowsOf(db, clock)).heads.map(([key]) => key)).toEqual(['rate:hour:user:u1', 'rcpt:day:user:u1']);
    clock.advance(HOUR);
    await relay.flush();
    expect(await rowsOf(db, clock)).toEqual({
      heads: [['rcpt:day:user:u1', expect.objectContaining({ total: 1 })]],
      buckets: [],
      members: [['rcpt:day:user:u1', 'a@x.org', { seen: manualClock().now(), committed: manualClock().now() }]],
      wiped: [],
    });
  });
});
