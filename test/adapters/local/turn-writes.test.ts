// TurnWrites (adapters/local/sqlite.ts): the writes a connection is given in one turn of the event
// loop, committed together in one transaction, each in a savepoint of its own; and the message
// log's addEvent, which goes through it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { closeConnection, openDatabase, openSoftStateConnection, TurnWrites, writesOf, type Db } from '../../../adapters/local/sqlite.js';

const dirs: string[] = [];
const holders: ChildProcess[] = [];
const open: Db[] = [];

afterEach(() => {
  for (const child of holders.splice(0)) child.kill('SIGKILL');
  for (const db of open.splice(0)) if (db.open) db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function database(): { path: string; db: Db } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-turn-writes-'));
  dirs.push(dir);
  const path = join(dir, 'outpost.db');
  const db = openDatabase(path);
  open.push(db);
  db.exec('CREATE TABLE IF NOT EXISTS t (n INTEGER NOT NULL)');
  return { path, db };
}

/** Frames in the WAL now: every commit appends the pages it changed, so N commits of one row each append at least N. */
function walFrames(db: Db): number {
  const [row] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
  return row?.log ?? -1;
}

const count = (db: Db): number => (db.prepare('SELECT COUNT(*) AS c FROM t').get() as { c: number }).c;
const insert = (db: Db, n: number) => () => db.prepare('INSERT INTO t (n) VALUES (?)').run(n).changes;

describe('TurnWrites', () => {
  it('commits the writes of one turn in one transaction, and each promise after that commit', async () => {
    const { path, db } = database();
    db.pragma('wal_autocheckpoint = 0');
    const writes = new TurnWrites(db);
    const reader = new Database(path, { readonly: true });

    // The same 20 rows, one turn each: a commit each.
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (let n = 0; n < 20; n += 1) await writes.run(insert(db, n));
    const framesOneByOne = walFrames(db);

    db.pragma('wal_checkpoint(TRUNCATE)');
    const pending = Array.from({ length: 20 }, (_, n) => writes.run(insert(db, 100 + n)));
    // Nothing is written before the turn is over.
    expect(count(reader)).toBe(20);
    expect(await Promise.all(pending)).toEqual(Array<number>(20).fill(1));
    // Settled after the commit: another connection sees every row.
    expect(count(reader)).toBe(40);
    const framesInOneTurn = walFrames(db);
    expect(framesOneByOne).toBeGreaterThanOrEqual(20);
    expect(framesInOneTurn).toBeLessThan(framesOneByOne / 4);
    reader.close();
  });

  it('rolls back a write that throws on its own, with what it wrote before throwing, and commits the others', async () => {
    const { db } = database();
    const writes = new TurnWrites(db);
    const first = writes.run(insert(db, 1));
    const failing = writes.run(() => {
      db.prepare('INSERT INTO t (n) VALUES (2)').run();
      // NOT NULL: this statement fails after the row above was written.
      db.prepare('INSERT INTO t (n) VALUES (NULL)').run();
    });
    const last = writes.run(insert(db, 3));
    await expect(failing).rejects.toThrow(/NOT NULL/);
    await expect(first).resolves.toBe(1);
    await expect(last).resolves.toBe(1);
    expect(db.prepare('SELECT n FROM t ORDER BY rowid').all()).toEqual([{ n: 1 }, { n: 3 }]);
    expect(db.inTransaction).toBe(false);
  });

  it('runs the writes in the order they were given', async () => {
    const { db } = database();
    const writes = writesOf(db);
    const given = [writes.run(insert(db, 1)), writes.run(() => db.prepare('UPDATE t SET n = n * 10').run().changes), writes.run(insert(db, 2))];
    expect(await Promise.all(given)).toEqual([1, 1, 1]);
    expect(db.prepare('SELECT n FROM t ORDER BY rowid').all()).toEqual([{ n: 10 }, { n: 2 }]);
    // One per connection, shared by its stores.
    expect(writesOf(db)).toBe(writes);
  });

  it('rejects every write of a turn whose commit cannot be made, and none of them took effect', async () => {
    const { path, db } = database();
    db.pragma('busy_timeout = 100');
    // Another process holds the write lock for longer than the connection waits for it.
    const script = `
      const Database = require('better-sqlite3');
      const db = new Database(${JSON.stringify(path)});
      db.exec('BEGIN IMMEDIATE');
      process.stdout.write('locked\\n');
      setInterval(() => undefined, 1000);
    `;
    const holder = spawn(process.execPath, ['-e', script], { cwd: join(import.meta.dirname, '..', '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    holders.push(holder);
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
      holder.once('exit', (code) => reject(new Error(`the lock holder exited ${code} before locking`)));
    });
    const writes = new TurnWrites(db);
    const given = [writes.run(insert(db, 1)), writes.run(insert(db, 2))];
    for (const write of given) await expect(write).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(count(db)).toBe(0);
    expect(db.inTransaction).toBe(false);
  });

  it('commits the writes still waiting when the connection is closed with closeConnection (a stop does not lose them)', async () => {
    const { path, db } = database();
    const writes = writesOf(db);
    const given = [writes.run(insert(db, 1)), writes.run(insert(db, 2))];
    closeConnection(db);
    expect(await Promise.all(given)).toEqual([1, 1]);
    const reopened = new Database(path, { readonly: true });
    expect(count(reopened)).toBe(2);
    reopened.close();
  });

  it('rejects the writes still waiting when the connection was closed in the meantime', async () => {
    const { db } = database();
    const write = new TurnWrites(db).run(insert(db, 1));
    db.close();
    await expect(write).rejects.toThrow(/closed before the write was committed/);
  });
});

describe('TurnWrites on a full database', () => {
  it('rejects each write of a turn that finds no room with SQLITE_FULL, commits none of them, and commits again once there is room', async () => {
    const { db } = database();
    const queue = new SqliteQueue(db, { maxReceives: 5 });
    await queue.send('scan', '{"messageId":"kept"}');
    // The database may not grow by a page: as a full disk under it would refuse.
    const pages = (db.pragma('page_count', { simple: true }) as number);
    db.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(64 * 1024);
    const given = [queue.send('scan', big), queue.send('scan', big), writesOf(db).run(insert(db, 1))];
    const outcomes = await Promise.allSettled(given);
    expect(outcomes.slice(0, 2).map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    for (const outcome of outcomes.slice(0, 2)) expect(outcome).toMatchObject({ reason: { code: 'SQLITE_FULL' } });
    // SQLite rolled the transaction back: the write given after the refused ones did not run on
    // its own (committed, yet reported failed); it failed with the batch.
    expect(outcomes[2]).toMatchObject({ status: 'rejected', reason: { code: 'SQLITE_FULL' } });
    expect(count(db)).toBe(0);
    // Nothing of the refused sends was kept; what was queued before is still there.
    expect(db.prepare("SELECT body FROM queue_messages WHERE queue = 'scan'").all()).toEqual([{ body: '{"messageId":"kept"}' }]);
    expect(db.inTransaction).toBe(false);
    db.pragma(`max_page_count = ${pages + 1000}`);
    await queue.send('scan', big);
    expect((db.prepare("SELECT COUNT(*) AS c FROM queue_messages WHERE queue = 'scan'").get() as { c: number }).c).toBe(2);
  });
});

describe('SqliteMessageLog.addEvent through TurnWrites', () => {
  function messageLog(clock: { now(): number }): { db: Db; log: SqliteMessageLog } {
    const { path } = database();
    const db = openSoftStateConnection(path);
    open.push(db);
    const log = new SqliteMessageLog(db, clock);
    log.createNow({ id: 'M1', tenantId: 't1', userId: 'u1', identity: 'alice@acme.example', mailFrom: 'alice@acme.example', rcptTo: ['bob@example.org'], size: 10, subject: null, status: 'queued', receivedAt: 1_000 });
    return { db, log };
  }

  it('records the event as it was when given: its detail and its time, whatever changes before the commit', async () => {
    let now = 5_000;
    const { log } = messageLog({ now: () => now });
    const detail: Record<string, unknown> = { recipient: 'bob@example.org' };
    const added = log.addEvent('M1', 'delivered', detail, 'delivered');
    detail.recipient = 'someone-else@example.org';
    now = 9_000;
    await added;
    const found = await log.get('M1');
    expect(found?.events).toEqual([{ at: 5_000, event: 'delivered', detail: { recipient: 'bob@example.org' } }]);
    expect(found?.message.status).toBe('delivered');
    expect(found?.message.updatedAt).toBe(5_000);
  });

  it('commits the events of many messages given in one turn together, each with its status', async () => {
    const { log } = messageLog({ now: () => 7_000 });
    await Promise.all([log.addEvent('M1', 'scanned', { kind: 'clean' }, 'queued'), log.addEvent('M1', 'dkim-signed', {}), log.addEvent('M1', 'delivered', {}, 'delivered')]);
    const found = await log.get('M1');
    expect(found?.events.map((event) => event.event)).toEqual(['scanned', 'dkim-signed', 'delivered']);
    expect(found?.message.status).toBe('delivered');
    expect(await log.eventCounts()).toEqual({ scanned: 1, 'dkim-signed': 1, delivered: 1 });
  });
});

describe('SqliteQueue through TurnWrites', () => {
  it('sends with the id and time of the call, visible to another connection once the send resolves; deletes likewise', async () => {
    const { path, db } = database();
    let now = 10_000;
    const queue = new SqliteQueue(db, { maxReceives: 5, clock: { now: () => now } });
    const reader = new Database(path, { readonly: true });
    const depth = () => (reader.prepare("SELECT COUNT(*) AS c FROM queue_messages WHERE queue = 'scan'").get() as { c: number }).c;
    const sent = queue.send('scan', '{"messageId":"M1"}');
    now = 20_000;
    const id = await sent;
    expect(depth()).toBe(1);
    const [received] = await queue.receive('scan', { max: 1, visibilityTimeoutSeconds: 30 });
    expect(received).toMatchObject({ messageId: id, sentAt: 10_000 });
    const deleted = queue.delete('scan', received?.receiptHandle ?? '');
    expect(depth()).toBe(1);
    await deleted;
    expect(depth()).toBe(0);
    reader.close();
  });
});
