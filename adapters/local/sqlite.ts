// Opens the single node's SQLite database. WAL lets the CLI and the relay use it at once;
// synchronous=FULL makes a committed transaction durable before we answer 250. Opening brings the
// schema up to date (migrations.ts), so every store finds its tables.
import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { migrate } from './migrations.js';
import { ensurePrivateDir, ensurePrivateFile, PRIVATE_FILE_MODE, tighten } from './private-files.js';

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
  const statements = new Map<string, ReturnType<Db['prepare']>>();
  const cached = (source: string) => {
    let statement = statements.get(source);
    if (!statement) {
      if (statements.size >= STATEMENT_CACHE) statements.clear();
      statement = prepare(source);
      statements.set(source, statement);
    }
    return statement;
  };
  db.prepare = cached as Db['prepare'];
  return db;
}

/** Runs `fn` in an IMMEDIATE transaction: the write lock is taken first, so concurrent writers queue. */
export function immediate<T>(db: Db, fn: () => T): T {
  return db.transaction(fn).immediate();
}
