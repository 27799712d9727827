import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteCounterStore } from '../../../adapters/local/counter-store.js';
import { MIGRATIONS, migrate } from '../../../adapters/local/migrations.js';
import { openDatabase, openSoftStateConnection } from '../../../adapters/local/sqlite.js';
import { counterStoreContract, manualClock } from '../../core/counters.contract.js';

counterStoreContract('SQLite (in memory)', (clock) => {
  const db = openDatabase(':memory:');
  return {
    store: new SqliteCounterStore(db, clock),
    close: () => {
      db.close();
    },
  };
});

counterStoreContract('SQLite (file, WAL)', (clock) => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-counters-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  return {
    store: new SqliteCounterStore(db, clock),
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteCounterStore across connections', () => {
  it('admits exactly L of 150 attempts made by 6 processes, each with its own connection to one file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-counters-'));
    const path = join(dir, 'outpost.db');
    // Create the schema once so that the workers do not race on CREATE TABLE.
    const db = openDatabase(path);
    new SqliteCounterStore(db);
    db.close();
    const worker = fileURLToPath(new URL('../../helpers/counter-worker.ts', import.meta.url));
    const now = Date.now();
    try {
      const counts = await Promise.all(
        Array.from(
          { length: 6 },
          () =>
            new Promise<number>((resolve, reject) => {
              execFile(process.execPath, ['--import', 'tsx', worker, path, '25', '23', String(now)], (error, stdout) => {
                if (error) reject(error);
                else resolve(Number(stdout));
              });
            }),
        ),
      );
      expect(counts.reduce((sum, n) => sum + n, 0)).toBe(23);
      const check = openDatabase(path);
      const store = new SqliteCounterStore(check, { now: () => now });
      expect(await store.total('shared', 60_000)).toBe(23);
      check.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

// A write skips looking for uses that left the window while the head's `oldest` is inside it; these
// cases are the ones where `oldest` must move back in time for that to stay exact.
describe('SqliteCounterStore: the oldest use a head records', () => {
  const MINUTE = 60_000;

  it('a connection whose clock is behind lowers the oldest use: its bucket still leaves on time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-counters-'));
    const path = join(dir, 'outpost.db');
    const durable = openDatabase(path);
    const ahead = manualClock();
    const start = ahead.now();
    const behind = manualClock(start - 5_000);
    const first = openSoftStateConnection(path);
    const second = openSoftStateConnection(path);
    try {
      const storeAhead = new SqliteCounterStore(first, ahead);
      const storeBehind = new SqliteCounterStore(second, behind);
      await storeAhead.add('skewed', 1, MINUTE);
      await storeBehind.add('skewed', 1, MINUTE);
      ahead.set(start - 5_000 + MINUTE - 1);
      expect(await storeAhead.total('skewed', MINUTE)).toBe(2);
      // The bucket written by the connection 5 s behind leaves a minute after its own second.
      ahead.set(start - 5_000 + MINUTE);
      expect(await storeAhead.total('skewed', MINUTE)).toBe(1);
      expect(await storeAhead.add('skewed', 1, MINUTE)).toBe(2);
    } finally {
      first.close();
      second.close();
      durable.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a database from before the oldest use was recorded counts exactly, and its held uses can still be given back', async () => {
    const db = new Database(':memory:');
    migrate(
      db,
      MIGRATIONS.filter((migration) => migration.version < 10),
    );
    const clock = manualClock();
    const start = clock.now();
    // As the previous store left them: a bucket about to leave, a live one, a held use and a held sighting.
    db.exec(`
      INSERT INTO counter_heads (key, window_ms, total, live_until) VALUES ('rate', ${MINUTE}, 3, ${start + MINUTE}), ('rcpt', ${MINUTE}, 1, ${start + MINUTE});
      INSERT INTO counter_buckets (key, at, units) VALUES ('rate', ${start - 30_000}, 1), ('rate', ${start}, 2);
      INSERT INTO counter_members (key, member, seen, committed) VALUES ('rcpt', 'a@x.org', ${start}, NULL);
      INSERT INTO counter_holds (tx, item, key, member, at, units, leaves_at) VALUES
        ('s', 'a@x.org', 'rate', NULL, ${start}, 1, ${start + MINUTE}),
        ('s', 'a@x.org', 'rcpt', 'a@x.org', ${start}, 1, ${start + MINUTE});
    `);
    migrate(db);
    const store = new SqliteCounterStore(db, clock);
    try {
      clock.set(start + 30_000);
      expect(await store.total('rate', MINUTE)).toBe(2);
      expect((await store.reserve({ limits: [{ key: 'rate', units: 1, limit: 3, windowMs: MINUTE }] })).ok).toBe(true);
      expect((await store.reserve({ limits: [{ key: 'rate', units: 1, limit: 3, windowMs: MINUTE }] })).ok).toBe(false);
      await store.settle('s', []);
      expect(await store.total('rate', MINUTE)).toBe(2);
      expect(await store.countDistinct('rcpt', MINUTE)).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('SqliteCounterStore: holds', () => {
  const MINUTE = 60_000;

  it('holds of one item, key and second are summed: giving them back releases every unit, keeping them keeps every unit', async () => {
    const db = openDatabase(':memory:');
    const store = new SqliteCounterStore(db, manualClock());
    try {
      const limit = { key: 'rate:twice', units: 1, limit: 10, windowMs: MINUTE };
      const distinct = [{ key: 'rcpt:twice', members: ['a@x.org'], limit: 10, windowMs: MINUTE }];
      for (const transaction of ['given-back', 'given-back', 'kept', 'kept']) {
        expect((await store.reserve({ limits: [limit], distinct, hold: { transaction, item: 'a@x.org' } })).ok).toBe(true);
      }
      expect(await store.total('rate:twice', MINUTE)).toBe(4);
      await store.settle('given-back', []);
      expect(await store.total('rate:twice', MINUTE)).toBe(2);
      await store.settle('kept', ['a@x.org']);
      expect(await store.total('rate:twice', MINUTE)).toBe(2);
      expect(await store.countDistinct('rcpt:twice', MINUTE)).toBe(1);
    } finally {
      db.close();
    }
  });
});
