// Cost of one RCPT's admission as a function of history: the CounterStore.reserve call the
// ingress makes per recipient (rate-limits.ts: mails per minute and per hour for the user and, an
// IP user, for its source address, and distinct recipients per rolling day, held by the session),
// on the single node's relay thread (its rate limits in memory, MemoryCounterStore) and on the
// SQLite store (every other counter; AWS has DynamoDB), with 10 and with 100,000 uses already in
// the user's windows.
// The ratio of the two p99s is the figure: 1 means admission does not depend on history.
//
//   npx tsx bench/admission.ts [--history 100000] [--samples 10000] [--warmup 200] [--rounds 5]
//                              [--stores relay,soft,file,memory]
//
// Paired samples. Each round builds two stores side by side, one with 10 uses and one with
// `history`, and takes their samples in turns (small then large, then large then small), so that
// whatever slows this machine for a while (another process, the hypervisor, a timer) falls on
// both alike. Measured one history after the other, the same code gave p99 ratios from 0.99 to
// 1.95 from run to run (a p99 of 10-20 µs moves with every interruption); paired, 1.2-1.35.
//
// Each round opens, for each history, a fresh in-memory store as the relay's thread holds it (with
// the relay's once-a-second flush: expired uses purged and changed rows taken, relay-counters.ts),
// and a fresh database in three ways: a file as the relay's counters use it (the soft-state
// connection: WAL, synchronous=NORMAL), a file opened as the durable stores open it (WAL,
// synchronous=FULL), and one in memory (the CPU cost alone). It fills it through the store with
// `history` reservations spread over the 50 seconds before the samples, each to a new recipient,
// then collects the garbage once (a history built in a second leaves its heap to be marked, and
// V8's incremental marking of it, 15 ms in 77 steps of up to 3 ms, fell among the large history's
// samples: a relay that gathered it over an hour has marked it long before). Then it times
// `samples` reservations (after `warmup` unmeasured), 13 ms of simulated time apart, each given
// back after it is timed (as after RSET), so that every sample meets an hour window of exactly
// `history` uses. Then, as the relay does for an accepted message, `samples` more reservations
// each settled keeping its recipient: the settle alone and the pair (reserve + settle) are timed.
// The figures are the medians over rounds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SqliteCounterStore } from '../adapters/local/counter-store.js';
import { openDatabase, openSoftStateConnection, type Db } from '../adapters/local/sqlite.js';
import type { CounterStore, DistinctLimit, WindowLimit } from '../core/counters.js';
import { MemoryCounterStore } from '../adapters/local/memory-counter-store.js';
import { counterKeys, DAY_MS, HOUR_MS, MINUTE_MS } from '../core/policy/keys.js';

const { values } = parseArgs({
  options: {
    history: { type: 'string', default: '100000' },
    samples: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    stores: { type: 'string', default: 'relay,soft,file,memory' },
  },
});
const LARGE = Number(values.history);
const SMALL = 10;
const SAMPLES = Number(values.samples);
const ROUNDS = Number(values.rounds);
const WARMUP = Number(values.warmup);
const START = Date.UTC(2026, 11, 2, 12, 0, 0);
// High enough that nothing is refused: the cost measured is that of an admitted RCPT.
const HIGH = 1_000_000_000;

const USER = 'u-bench';
const IP = '192.0.2.10';

function request(recipient: string): { limits: WindowLimit[]; distinct: DistinctLimit[] } {
  return {
    limits: [
      { key: counterKeys.rateMinuteUser(USER), units: 1, limit: HIGH, windowMs: MINUTE_MS },
      { key: counterKeys.rateMinuteIp(IP), units: 1, limit: HIGH, windowMs: MINUTE_MS },
      { key: counterKeys.rateHourUser(USER), units: 1, limit: HIGH, windowMs: HOUR_MS },
      { key: counterKeys.rateHourIp(IP), units: 1, limit: HIGH, windowMs: HOUR_MS },
    ],
    distinct: [{ key: counterKeys.distinctRecipients(USER), members: [recipient], limit: HIGH, windowMs: DAY_MS }],
  };
}

interface Timing {
  p50: number;
  p99: number;
}

/** What one round measures: the reservation (given back), and for an accepted message the settle and the pair. */
interface RoundTimings {
  reserve: Timing;
  settle: Timing;
  pair: Timing;
  /** WAL frames (pages) one reserve + settle (kept) writes; undefined in memory. */
  pages: number | undefined;
}

type Kind = 'relay' | 'soft' | 'file' | 'memory';

const LABELS: Record<Kind, string> = {
  relay: "the relay's thread: rate limits in memory (MemoryCounterStore, the single node since 2026-12-03)",
  soft: 'SQLite file, as the relay counts (WAL, synchronous=NORMAL)',
  file: 'SQLite file (WAL, synchronous=FULL)',
  memory: 'SQLite in memory (CPU only)',
};

function open(kind: Kind, dir: string | undefined): { db: Db; close(): void } {
  if (dir === undefined) {
    const db = openDatabase(':memory:');
    return { db, close: () => db.close() };
  }
  const path = join(dir, 'outpost.db');
  const durable = openDatabase(path);
  if (kind === 'file') return { db: durable, close: () => durable.close() };
  // As the relay: the durable connection migrated the schema, the counters use their own.
  const soft = openSoftStateConnection(path);
  return {
    db: soft,
    close: () => {
      soft.close();
      durable.close();
    },
  };
}

/** One history's store, filled, on the round's clock. */
interface Subject {
  history: number;
  store: CounterStore;
  db: Db | undefined;
  close(): void;
}

/** The relay's flush, without its write (relay-counters.ts): expired uses purged, changed rows taken. */
const FLUSH_EVERY = Math.round(1000 / 13);

const collectGarbage = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function subject(kind: Kind, history: number, clock: { now: number }): Subject {
  const dir = kind === 'memory' || kind === 'relay' ? undefined : mkdtempSync(join(tmpdir(), 'outpost-bench-admission-'));
  const opened = kind === 'relay' ? undefined : open(kind, dir);
  const store: CounterStore = opened ? new SqliteCounterStore(opened.db, { now: () => clock.now }) : new MemoryCounterStore({ now: () => clock.now });
  const fill = (from: number, to: number): void => {
    for (let j = from; j < to; j++) {
      clock.now = START - 50_000 + Math.floor((j * 50_000) / history);
      void store.reserve(request(`old${j}@example.org`));
    }
  };
  // The history, in transactions of 1,000 (reserve's own transaction nests as a savepoint).
  for (let i = 0; i < history; i += 1000) {
    if (opened) opened.db.transaction(() => fill(i, Math.min(history, i + 1000)))();
    else fill(i, Math.min(history, i + 1000));
  }
  if (store instanceof MemoryCounterStore) store.takeChanges();
  return {
    history,
    store,
    db: opened?.db,
    close: () => {
      opened?.close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One round: both histories' stores side by side, sampled in turns. */
async function measure(kind: Kind): Promise<[small: RoundTimings, large: RoundTimings]> {
  const clock = { now: 0 };
  const subjects = [subject(kind, SMALL, clock), subject(kind, LARGE, clock)] as const;
  const elapsed = (began: bigint): number => Number(process.hrtime.bigint() - began) / 1e6;
  const times = subjects.map(() => ({ reserves: [] as number[], settles: [] as number[], pairs: [] as number[] }));
  // Each sample in turn: small then large, then large then small.
  const inTurn = (i: number): number[] => (i % 2 === 0 ? [0, 1] : [1, 0]);
  const flush = async (i: number): Promise<void> => {
    if (kind !== 'relay' || i % FLUSH_EVERY !== 0) return;
    for (const { store } of subjects) {
      await store.purgeExpired();
      (store as MemoryCounterStore).takeChanges();
    }
  };
  try {
    collectGarbage();
    clock.now = START;
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      clock.now += 13;
      await flush(i);
      const recipient = `new${i}@example.org`;
      for (const k of inTurn(i)) {
        const { store } = subjects[k]!;
        const began = process.hrtime.bigint();
        const outcome = await store.reserve({ ...request(recipient), hold: { transaction: `s${i}`, item: recipient } });
        const took = elapsed(began);
        if (!outcome.ok) throw new Error(`refused: ${JSON.stringify(outcome.refused)}`);
        // Given back, as after RSET: every sample meets a window of exactly `history` uses.
        await store.settle(`s${i}`, []);
        if (i >= WARMUP) times[k]!.reserves.push(took);
      }
    }
    for (const { store, history } of subjects) {
      const total = await store.total(counterKeys.rateHourUser(USER), HOUR_MS);
      if (total !== history) throw new Error(`the hour window counts ${total}, expected ${history}`);
    }
    // An accepted message: the reservation is kept (the window grows by `samples`, a few % at most).
    for (let i = 0; i < SAMPLES; i++) {
      clock.now += 13;
      await flush(i);
      const recipient = `kept${i}@example.org`;
      for (const k of inTurn(i)) {
        const { store } = subjects[k]!;
        const began = process.hrtime.bigint();
        const outcome = await store.reserve({ ...request(recipient), hold: { transaction: `k${i}`, item: recipient } });
        const settling = process.hrtime.bigint();
        await store.settle(`k${i}`, [recipient]);
        times[k]!.settles.push(elapsed(settling));
        times[k]!.pairs.push(elapsed(began));
        if (!outcome.ok) throw new Error(`refused: ${JSON.stringify(outcome.refused)}`);
      }
    }
    const results = [] as RoundTimings[];
    for (const [k, { store, db, history }] of subjects.entries()) {
      const kept = await store.countDistinct(counterKeys.distinctRecipients(USER), DAY_MS);
      if (kept !== history + SAMPLES) throw new Error(`the day window counts ${kept} recipients, expected ${history + SAMPLES}`);
      const { reserves, settles, pairs } = times[k]!;
      // Printed for the large history only.
      const pages = history === LARGE && db !== undefined && kind !== 'memory' && store instanceof SqliteCounterStore ? pagesPerPair(db, store, () => (clock.now += 13)) : undefined;
      results.push({ reserve: timing(reserves), settle: timing(settles), pair: timing(pairs), pages });
    }
    return [results[0]!, results[1]!];
  } finally {
    for (const { close } of subjects) close();
  }
}

/**
 * The write work of an accepted recipient: the pages its two commits append to the WAL, counted
 * over 200 pairs with automatic checkpoints off (a checkpoint would restart the WAL) after one
 * that empties it.
 */
function pagesPerPair(db: Db, store: SqliteCounterStore, tick: () => void): number {
  const PAIRS = 200;
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma('wal_autocheckpoint = 0');
  for (let i = 0; i < PAIRS; i++) {
    tick();
    const recipient = `counted${i}@example.org`;
    void store.reserve({ ...request(recipient), hold: { transaction: `c${i}`, item: recipient } });
    void store.settle(`c${i}`, [recipient]);
  }
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
  return (result?.log ?? NaN) / PAIRS;
}

function timing(times: number[]): Timing {
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

function medianTiming(timings: Timing[]): Timing {
  return { p50: median(timings.map((t) => t.p50)), p99: median(timings.map((t) => t.p99)) };
}

function line(label: string, t: Timing): string {
  return `  ${label.padEnd(34)} p50 ${t.p50.toFixed(3)} ms   p99 ${t.p99.toFixed(3)} ms`;
}

async function main(): Promise<void> {
  console.log(`one RCPT reservation (4 window limits + distinct recipients per day, held, then given back), ${SAMPLES} samples of each history taken in turns, ${ROUNDS} rounds`);
  const kinds = values.stores.split(',').map((name) => name.trim());
  const unknown = kinds.filter((name) => !(name in LABELS));
  if (unknown.length > 0) throw new Error(`--stores: unknown ${unknown.join(', ')} (relay, soft, file, memory)`);
  for (const kind of kinds as Kind[]) {
    const small: RoundTimings[] = [];
    const large: RoundTimings[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const [s, l] = await measure(kind);
      small.push(s);
      large.push(l);
    }
    const s = medianTiming(small.map((t) => t.reserve));
    const l = medianTiming(large.map((t) => t.reserve));
    console.log(`\n${LABELS[kind]}`);
    console.log(line(`${String(SMALL).padStart(7)} uses in the window`, s));
    console.log(line(`${String(LARGE).padStart(7)} uses in the window`, l));
    console.log(`  ${`ratio ${LARGE}/${SMALL}`.padEnd(34)} p50 ${(l.p50 / s.p50).toFixed(2)}        p99 ${(l.p99 / s.p99).toFixed(2)}`);
    console.log(line(`settle, kept (${LARGE} uses)`, medianTiming(large.map((t) => t.settle))));
    console.log(line(`reserve + settle, kept (${LARGE})`, medianTiming(large.map((t) => t.pair))));
    const pages = large.map((t) => t.pages).filter((n): n is number => n !== undefined);
    if (pages.length > 0) console.log(`  ${'pages written per reserve + settle'.padEnd(34)} ${median(pages).toFixed(1)} (4 KiB WAL frames)`);
  }
}

await main();
