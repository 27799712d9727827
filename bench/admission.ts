// Cost of one RCPT's admission as a function of history: the CounterStore.reserve call the
// ingress makes per recipient (rate-limits.ts: mails per minute and per hour for the user and, an
// IP user, for its source address, and distinct recipients per rolling day, held by the session),
// on the single node's relay thread (its rate limits in memory, MemoryCounterStore) and on the
// SQLite store (every other counter; AWS has DynamoDB), with 10 and with 100,000 uses already in
// the user's windows.
// The ratio of the two p99s is the figure: 1 means admission does not depend on history.
//
//   npx tsx bench/admission.ts [--history 100000] [--samples 10000] [--warmup 200] [--rounds 5]
//
// The p99 of a few microseconds moves with every young-generation collection: with 2,000 samples
// and 3 rounds (the former defaults) one run of the in-memory store gave 0.90 and the next 1.73;
// with 10,000 samples and 5 rounds, 1.22-1.49.
//
// Each round opens a fresh in-memory store as the relay's thread holds it, and a fresh database in three ways: a file as the relay's counters use it (the
// soft-state connection: WAL, synchronous=NORMAL), a file opened as the durable stores open it
// (WAL, synchronous=FULL), and one in memory (the CPU cost alone). It fills it through the store
// with `history` reservations spread over the last 50 seconds (so every window holds all of
// them), each to a new recipient, then times `samples` reservations (after `warmup` unmeasured),
// 13 ms of simulated time apart, each given back after it is timed (as after RSET), so that every
// sample meets a window of exactly `history` uses. Then, as the relay does for an accepted
// message, `samples` more reservations each settled keeping its recipient: the settle alone and
// the pair (reserve + settle) are timed. Rounds alternate small and large histories; the figures
// are the medians over rounds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
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

async function measure(kind: Kind, history: number): Promise<RoundTimings> {
  const dir = kind === 'memory' || kind === 'relay' ? undefined : mkdtempSync(join(tmpdir(), 'outpost-bench-admission-'));
  const { db, close } = open(kind, dir);
  let now = START - 50_000;
  const clock = { now: () => now };
  const store: CounterStore = kind === 'relay' ? new MemoryCounterStore(clock) : new SqliteCounterStore(db, clock);
  const elapsed = (began: bigint): number => Number(process.hrtime.bigint() - began) / 1e6;
  try {
    // The history, in transactions of 1,000 (reserve's own transaction nests as a savepoint).
    for (let i = 0; i < history; i += 1000) {
      db.transaction(() => {
        for (let j = i; j < Math.min(history, i + 1000); j++) {
          now = START - 50_000 + Math.floor((j * 50_000) / history);
          void store.reserve(request(`old${j}@example.org`));
        }
      })();
    }
    now = START;
    const reserves: number[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      now += 13;
      const recipient = `new${i}@example.org`;
      const began = process.hrtime.bigint();
      const outcome = await store.reserve({ ...request(recipient), hold: { transaction: `s${i}`, item: recipient } });
      const took = elapsed(began);
      if (!outcome.ok) throw new Error(`refused: ${JSON.stringify(outcome.refused)}`);
      // Given back, as after RSET: every sample meets a window of exactly `history` uses.
      await store.settle(`s${i}`, []);
      if (i >= WARMUP) reserves.push(took);
    }
    const total = await store.total(counterKeys.rateHourUser(USER), HOUR_MS);
    if (total !== history) throw new Error(`the hour window counts ${total}, expected ${history}`);
    // An accepted message: the reservation is kept (the window grows by `samples`, a few % at most).
    const settles: number[] = [];
    const pairs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      now += 13;
      const recipient = `kept${i}@example.org`;
      const began = process.hrtime.bigint();
      const outcome = await store.reserve({ ...request(recipient), hold: { transaction: `k${i}`, item: recipient } });
      const settling = process.hrtime.bigint();
      await store.settle(`k${i}`, [recipient]);
      settles.push(elapsed(settling));
      pairs.push(elapsed(began));
      if (!outcome.ok) throw new Error(`refused: ${JSON.stringify(outcome.refused)}`);
    }
    const kept = await store.countDistinct(counterKeys.distinctRecipients(USER), DAY_MS);
    if (kept !== history + SAMPLES) throw new Error(`the day window counts ${kept} recipients, expected ${history + SAMPLES}`);
    return { reserve: timing(reserves), settle: timing(settles), pair: timing(pairs), pages: dir === undefined || !(store instanceof SqliteCounterStore) ? undefined : pagesPerPair(db, store, () => (now += 13)) };
  } finally {
    close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
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
  console.log(`one RCPT reservation (4 window limits + distinct recipients per day, held, then given back), ${SAMPLES} samples, ${ROUNDS} alternating rounds`);
  for (const kind of ['relay', 'soft', 'file', 'memory'] as const) {
    const small: RoundTimings[] = [];
    const large: RoundTimings[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      small.push(await measure(kind, SMALL));
      large.push(await measure(kind, LARGE));
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
