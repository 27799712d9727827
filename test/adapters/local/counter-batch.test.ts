// runCounterBatch (adapters/local/counter-batch.ts): the counter worker thread's batch of calls in
// one transaction, on a database that fills up in the middle of it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCounterBatch } from '../../../adapters/local/counter-batch.js';
import { SqliteCounterStore } from '../../../adapters/local/counter-store.js';
import type { CounterCall } from '../../../adapters/local/counter-thread.js';
import { openSoftStateConnection, openDatabase } from '../../../adapters/local/sqlite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('runCounterBatch', () => {
  it('answers every call with SQLITE_FULL when one of them fills the database, and keeps none of them (the later ones do not run on their own)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-counter-batch-'));
    dirs.push(dir);
    const path = join(dir, 'outpost.db');
    openDatabase(path).close();
    const db = openSoftStateConnection(path);
    let callTime = 0;
    const store = new SqliteCounterStore(db, { now: () => callTime });
    await store.add('small', 1, 60_000);
    // The database may not grow by a page: as a full disk under it would refuse.
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    // A key longer than the free room of any page: its rows need pages the database may not add.
    const bigKey = `big-${'x'.repeat(16 * 1024)}`;
    const calls: CounterCall[] = [
      // A distinct member: its rows go to tables without triggers. A statement that fires a
      // trigger (counter_buckets has some since migration 13) keeps a statement journal, and SQLite
      // then undoes that statement alone, not the whole transaction.
      { id: 1, now: 1_000, method: 'reserve', args: [{ limits: [], distinct: [{ key: bigKey, members: ['someone@example.org'], limit: 10, windowMs: 60_000 }] }] },
      // Fits in the pages there are: it would commit on its own if it ran outside the transaction.
      { id: 2, now: 1_000, method: 'add', args: ['small', 1, 60_000] },
    ];
    const answers = await runCounterBatch(db, store, calls, (now) => (callTime = now));
    expect(answers).toEqual([expect.objectContaining({ id: 1, ok: false, code: 'SQLITE_FULL' }), expect.objectContaining({ id: 2, ok: false, code: 'SQLITE_FULL' })]);
    expect(db.inTransaction).toBe(false);
    callTime = 2_000;
    expect(await store.total('small', 60_000)).toBe(1);
    expect(await store.total(bigKey, 60_000)).toBe(0);
    db.close();
  });

  it('answers each call of a batch that commits with its own outcome', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-counter-batch-'));
    dirs.push(dir);
    const db = openDatabase(join(dir, 'outpost.db'));
    let callTime = 0;
    const store = new SqliteCounterStore(db, { now: () => callTime });
    const answers = await runCounterBatch(db, store, [
      { id: 1, now: 1_000, method: 'add', args: ['k', 2, 60_000] },
      { id: 2, now: 1_000, method: 'total', args: ['k', 60_000] },
    ], (now) => (callTime = now));
    expect(answers).toEqual([{ id: 1, ok: true, value: 2 }, { id: 2, ok: true, value: 2 }]);
    db.close();
  });
});
