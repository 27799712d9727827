// The relay thread's counters in a worker thread (adapters/local/counter-thread.ts): the same
// contract as every CounterStore, exact limits when other connections reserve at the same time,
// calls answered in the order they were made, and a close that waits for the calls in hand.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ThreadedCounterStore } from '../../../adapters/local/counter-thread.js';
import { SqliteCounterStore } from '../../../adapters/local/counter-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import type { Logger } from '../../../core/ports.js';
import { counterStoreContract } from '../../core/counters.contract.js';

const errors: string[] = [];
const logger: Logger = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: (message) => errors.push(message) };

/** A database file with the schema in place (the single node migrates it before the thread starts). */
function databaseFile(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-counter-thread-'));
  const path = join(dir, 'outpost.db');
  openDatabase(path).close();
  return { dir, path };
}

counterStoreContract('SQLite in a worker thread', (clock) => {
  const { dir, path } = databaseFile();
  const store = new ThreadedCounterStore(path, logger, clock);
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('ThreadedCounterStore', () => {
  const limit = (max: number) => ({ key: 'shared', units: 1, limit: max, windowMs: 60_000 });

  it('answers calls in the order they were made: of 200 made at once against a limit of 150, the first 150 are admitted', async () => {
    const { dir, path } = databaseFile();
    const store = new ThreadedCounterStore(path, logger);
    try {
      const outcomes = await Promise.all(Array.from({ length: 200 }, () => store.reserve({ limits: [limit(150)] })));
      expect(outcomes.map((outcome) => outcome.ok)).toEqual(Array.from({ length: 200 }, (_, i) => i < 150));
      expect(await store.total('shared', 60_000)).toBe(150);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('admits exactly L of 175 attempts made at once by the thread and 3 processes with connections of their own', async () => {
    const { dir, path } = databaseFile();
    const store = new ThreadedCounterStore(path, logger);
    const worker = fileURLToPath(new URL('../../helpers/counter-worker.ts', import.meta.url));
    const now = Date.now();
    try {
      const processes = Array.from(
        { length: 3 },
        () =>
          new Promise<number>((resolve, reject) => {
            execFile(process.execPath, ['--import', 'tsx', worker, path, '25', '61', String(now)], (error, stdout) => (error ? reject(error) : resolve(Number(stdout))));
          }),
      );
      const inThread = Promise.all(Array.from({ length: 100 }, () => store.reserve({ limits: [limit(61)] })));
      const [counts, outcomes] = await Promise.all([Promise.all(processes), inThread]);
      const admitted = counts.reduce((sum, n) => sum + n, 0) + outcomes.filter((outcome) => outcome.ok).length;
      expect(admitted).toBe(61);
      expect(await store.total('shared', 60_000)).toBe(61);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('fails a call that cannot cross to the worker (not plain data) with an error, and serves the next', async () => {
    const { dir, path } = databaseFile();
    const store = new ThreadedCounterStore(path, logger);
    try {
      const strange = { key: 'shared', units: 1, limit: 5, windowMs: 60_000, callback: () => 1 } as unknown as ReturnType<typeof limit>;
      await expect(store.reserve({ limits: [strange] })).rejects.toThrow(/cannot take the call/);
      expect(errors).toContain('cannot hand calls to the counter worker thread');
      expect(await store.reserve({ limits: [limit(5)] })).toEqual({ ok: true });
      expect(await store.total('shared', 60_000)).toBe(1);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });


  it('runs the calls of one turn in one transaction, yet a call that fails there is undone alone: the calls before and after it keep their effects', async () => {
    const { dir, path } = databaseFile();
    const store = new ThreadedCounterStore(path, logger);
    try {
      await store.start();
      // Made in one turn, so they cross in one message; the middle one fails in the worker (SQLite
      // cannot bind an object), after the first has written and before the third does.
      const outcomes = await Promise.allSettled([
        store.add('batch', 1, 60_000),
        store.add({ not: 'a key' } as unknown as string, 1, 60_000),
        store.reserve({ limits: [{ key: 'batch', units: 1, limit: 5, windowMs: 60_000 }] }),
        store.add('batch', 1, 60_000),
      ]);
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect(outcomes[1]?.status === 'rejected' ? String(outcomes[1].reason) : '').toMatch(/Too few parameter values/);
      expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : undefined))).toEqual([1, undefined, { ok: true }, 3]);
      // Committed: another connection (a process of its own, as the CLI) sees all three.
      const reader = openDatabase(path);
      try {
        expect(await new SqliteCounterStore(reader).total('batch', 60_000)).toBe(3);
      } finally {
        reader.close();
      }
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('finishes the calls in hand before it closes, and refuses calls after', async () => {
    const { dir, path } = databaseFile();
    const store = new ThreadedCounterStore(path, logger);
    try {
      const inHand = Array.from({ length: 50 }, () => store.add('events', 1, 60_000));
      await store.close();
      expect((await Promise.all(inHand)).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      await expect(store.total('events', 60_000)).rejects.toThrow(/closed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
