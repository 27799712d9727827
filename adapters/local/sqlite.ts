// Opens the single node's SQLite database. WAL lets the CLI and the relay use it at once;
// synchronous=FULL makes a committed transaction durable before we answer 250. Opening brings the
// schema up to date (migrations.ts), so every store finds its tables.
import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { migrate } from './migrations.js';
import { ensurePrivateDir, ensurePrivateFile, PRIVATE_FILE_MODE, tighten } from './private-files.js';
import { BoundedMemo } from '../../core/bounded-memo.js';

export type Db = Database.Database;

export function openDatabase(path: string): Db {
  if (path !== ':memory:') {
    ensurePrivateDir(dirname(path));
    // SQLite gives the -wal and -shm files the mode of the database file: create that 0600.
    ensurePrivateFile(path);
  }
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  if (path !== ':memory:') for (const suffix of ['-wal', '-shm']) tighten(path + suffix, PRIVATE_FILE_MODE);
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  try {
    migrate(db);
  } catch (error: unknown) {
    db.close();
    throw error;
  }
  return keepPreparedStatements(db);
}

/**
 * A second connection to the same database for soft state (rate-limit counters) whose commits
 * need atomicity but not an fsync each: synchronous=NORMAL in WAL mode. A power cut may forget
 * the last counter commits, never a queued message: WAL frames are replayed in order, so what
 * is lost is only a suffix of commits, and every queue commit (FULL, on the main connection)
 * makes all frames before it durable, counter commits included.
 */
export function openSoftStateConnection(path: string): Db {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return keepPreparedStatements(db);
}

/** Most statements a connection keeps prepared; the stores use a few dozen distinct ones. */
const STATEMENT_CACHE = 500;

/**
 * Keeps every statement a connection prepares, by its SQL text: the stores call `prepare` on each
 * operation, and compiling the SQL again each time was 4-7% of the relay's CPU under load.
 * Sound because no store iterates a statement (`iterate()`) or changes its mode (`pluck()`,
 * `raw()`, `expand()`): a statement runs to completion before anyone else can use it.
 */
function keepPreparedStatements(db: Db): Db {
  const prepare = db.prepare.bind(db);
  const statements = new BoundedMemo(STATEMENT_CACHE, (source) => prepare(source));
  db.prepare = ((source: string) => statements.get(source)) as Db['prepare'];
  return db;
}

/** Runs `fn` in an IMMEDIATE transaction: the write lock is taken first, so concurrent writers queue. */
export function immediate<T>(db: Db, fn: () => T): T {
  return db.transaction(fn).immediate();
}

/** Longest a write waits for the write lock, as `busy_timeout` on every other connection. */
export const WRITE_LOCK_TIMEOUT_MS = 5_000;
const FIRST_LOCK_WAIT_MS = 0.05;
const MAX_LOCK_WAIT_MS = 1;
const lockWait = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `fn` in an IMMEDIATE transaction whose write lock is waited for in short steps, for the
 * connections of the relay's latency-critical threads (the counter worker, the acceptance writer),
 * opened with `busy_timeout = 0`. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … 100 ms
 * between attempts: while the pipeline or the other worker held the lock for a fraction of a
 * millisecond, a reservation or a group commit slept whole milliseconds, and every SMTP reply
 * waiting on it with them (perf stat of a 4,000-message burst: 735 such sleeps). Here the
 * thread waits 50 µs, doubling up to 1 ms, and gives up with SQLITE_BUSY after `timeoutMs`.
 * Only the BEGIN waits: once it holds the lock, no statement of a WAL connection is busy.
 */
export function writeLocked<T>(db: Db, fn: () => T, timeoutMs = WRITE_LOCK_TIMEOUT_MS): T {
  const begin = db.prepare('BEGIN IMMEDIATE');
  const started = performance.now();
  let wait = FIRST_LOCK_WAIT_MS;
  for (;;) {
    try {
      begin.run();
      break;
    } catch (error: unknown) {
      const busy = error instanceof Error && 'code' in error && (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED');
      if (!busy || performance.now() - started >= timeoutMs) throw error;
      Atomics.wait(lockWait, 0, 0, wait);
      wait = Math.min(MAX_LOCK_WAIT_MS, wait * 2);
    }
  }
  try {
    const result = fn();
    db.prepare('COMMIT').run();
    return result;
  } catch (error: unknown) {
    if (db.inTransaction) db.prepare('ROLLBACK').run();
    throw error;
  }
}

/**
 * Makes `db` give SQLITE_BUSY at once instead of sleeping in SQLite's busy handler: for a
 * connection whose every write goes through writeLocked(), which waits in finer steps.
 */
export function failFastWhenBusy(db: Db): Db {
  db.pragma('busy_timeout = 0');
  return db;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface BatchedWrite {
  write: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Writes made on one connection in one turn of the event loop, committed together: each runs in a
 * savepoint of one IMMEDIATE transaction when the turn is over (a write that fails is rolled back
 * alone and rejects its own promise), and every promise settles after the commit. A commit costs
 * the same whether it carries one row or twenty (the WAL frames of the pages it touched, the
 * wal-index, and on a synchronous=FULL connection an fsync): the pipeline's history events, a
 * few for every message, each paid a commit of their own (a tenth of the pipeline thread).
 *
 * A caller that awaits its write sees it committed, as before; a read made before the turn is
 * over does not see a write that is still waiting (await the write first). A commit that fails
 * (a full disk, the write lock not had within busy_timeout) rejects every write of the batch:
 * none of them took effect. Closing a connection commits what is waiting first (closeConnection).
 */
export class TurnWrites {
  private pending: BatchedWrite[] = [];
  // Made once: better-sqlite3 builds a wrapper per `transaction()` call.
  private readonly inSavepoint;
  private readonly commitAll;

  constructor(private readonly db: Db) {
    // Nested in commitAll's transaction: a savepoint, rolled back alone if the write throws.
    this.inSavepoint = db.transaction((write: () => unknown) => write());
    this.commitAll = db.transaction((batch: BatchedWrite[], outcomes: Outcome[]) => {
      for (const item of batch) {
        try {
          outcomes.push({ ok: true, value: this.inSavepoint(item.write) });
        } catch (error: unknown) {
          // SQLite rolls the whole transaction back on some errors (a full disk, I/O, memory):
          // nothing of the batch took effect then, and no later write may run (and autocommit)
          // outside it. The batch fails with that error.
          if (!db.inTransaction) throw error;
          outcomes.push({ ok: false, error });
        }
      }
    });
  }

  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.push({ write, resolve: resolve as (value: unknown) => void, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  /** Commits the writes waiting now, without waiting for the turn to end (before the connection is closed). */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    if (!this.db.open) {
      for (const item of batch) item.reject(new Error('the database connection was closed before the write was committed'));
      return;
    }
    const outcomes: Outcome[] = [];
    try {
      this.commitAll.immediate(batch, outcomes);
    } catch (error: unknown) {
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, index) => {
      const outcome = outcomes[index];
      if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(outcome?.error);
    });
  }
}

const turnWrites = new WeakMap<Db, TurnWrites>();

/** The connection's TurnWrites (one for every store on it, so that their writes keep their order). */
export function writesOf(db: Db): TurnWrites {
  let writes = turnWrites.get(db);
  if (!writes) {
    writes = new TurnWrites(db);
    turnWrites.set(db, writes);
  }
  return writes;
}

/** Commits the writes still waiting on `db` for the end of the turn (TurnWrites), then closes it. */
export function closeConnection(db: Db): void {
  if (db.open) turnWrites.get(db)?.flush();
  db.close();
}
