// writeLocked (adapters/local/sqlite.ts): the write transaction of the counter worker and the
// acceptance writer, on connections that fail fast when busy and wait for the write lock in
// short steps of their own. The lock is held by another process, as the CLI or a second relay
// process would hold it, since this thread is blocked while it waits.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failFastWhenBusy, openDatabase, writeLocked, type Db } from '../../../adapters/local/sqlite.js';

const holders: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const child of holders.splice(0)) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function database(): { path: string; db: Db } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-write-locked-'));
  dirs.push(dir);
  const path = join(dir, 'outpost.db');
  const db = failFastWhenBusy(openDatabase(path));
  db.exec('CREATE TABLE IF NOT EXISTS t (n INTEGER)');
  return { path, db };
}

/** Another process takes the write lock (BEGIN IMMEDIATE), inserts a row, and commits after `holdMs` (never, if undefined). */
async function holdWriteLock(path: string, holdMs: number | undefined): Promise<ChildProcess> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(path)});
    db.exec('BEGIN IMMEDIATE');
    db.prepare('INSERT INTO t (n) VALUES (1)').run();
    process.stdout.write('locked\\n');
    ${holdMs === undefined ? 'setInterval(() => undefined, 1000);' : `setTimeout(() => { db.exec('COMMIT'); process.stdout.write('released\\n'); process.exit(0); }, ${holdMs});`}
  `;
  const child = spawn(process.execPath, ['-e', script], { cwd: join(import.meta.dirname, '..', '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
  holders.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the lock holder exited ${code} before locking`)));
  });
  return child;
}

describe('writeLocked', () => {
  it('waits for a write lock another process holds, then commits after that process\'s write', async () => {
    const { path, db } = database();
    await holdWriteLock(path, 150);
    const result = writeLocked(db, () => {
      // The holder committed first: its row is there when this transaction runs.
      const before = (db.prepare('SELECT COUNT(*) AS c FROM t').get() as { c: number }).c;
      db.prepare('INSERT INTO t (n) VALUES (2)').run();
      return before;
    });
    expect(result).toBe(1);
    expect(db.prepare('SELECT n FROM t ORDER BY rowid').all()).toEqual([{ n: 1 }, { n: 2 }]);
    expect(db.inTransaction).toBe(false);
    db.close();
  });

  it('gives up with SQLITE_BUSY once its timeout has passed, and leaves no transaction open', async () => {
    const { path, db } = database();
    await holdWriteLock(path, undefined);
    const started = performance.now();
    expect(() => writeLocked(db, () => db.prepare('INSERT INTO t (n) VALUES (3)').run(), 200)).toThrow(expect.objectContaining({ code: 'SQLITE_BUSY' }));
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(db.inTransaction).toBe(false);
    db.close();
  });

  it('rolls back what the function wrote when it throws, and passes the error on', () => {
    const { db } = database();
    expect(() =>
      writeLocked(db, () => {
        db.prepare('INSERT INTO t (n) VALUES (4)').run();
        throw new Error('half done');
      }),
    ).toThrow('half done');
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT COUNT(*) AS c FROM t').get()).toEqual({ c: 0 });
    db.close();
  });
});
