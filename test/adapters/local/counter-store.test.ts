import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SqliteCounterStore } from '../../../adapters/local/counter-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { counterStoreContract } from '../../core/counters.contract.js';

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
