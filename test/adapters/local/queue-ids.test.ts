// Queue entries and receipt handles are UUIDs in time order (version 7), so that each commit
// adds them to the last page of their index instead of a random page: with random UUIDs, a group
// commit of 7 messages wrote 9 pages of the queue's id index to the WAL, with these it writes 2.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitAccepted } from '../../../adapters/local/acceptance-batch.js';
import { SqliteMessageBodies } from '../../../adapters/local/message-body-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQueue, timeOrderedUuid } from '../../../adapters/local/queue.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import { acceptedMessage } from '../../helpers/accepted-message.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The page number of each frame in the WAL of the database at `path` (a frame: a 24-byte header, then the page). */
function pagesInWal(db: Db, path: string): number[] {
  const wal = readFileSync(`${path}-wal`);
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages: number[] = [];
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) pages.push(wal.readUInt32BE(offset));
  return pages;
}

/** The pages of the b-tree `name` (a table or an index), as SQLite's dbstat lists them. */
function pagesOf(db: Db, name: string): Set<number> {
  return new Set((db.prepare('SELECT pageno FROM dbstat WHERE name = ?').all(name) as Array<{ pageno: number }>).map((row) => row.pageno));
}

describe('timeOrderedUuid', () => {
  it('is a version 7 UUID carrying the millisecond it was made in', () => {
    const id = timeOrderedUuid(Date.UTC(2026, 11, 3, 14, 30));
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(Date.UTC(2026, 11, 3, 14, 30));
  });

  it('stays a valid id when the clock is wrong: before 1970, or past what 48 bits hold', () => {
    for (const now of [-1, -86_400_000, 2 ** 48, Number.MAX_SAFE_INTEGER, 1.5]) expect(timeOrderedUuid(now)).toMatch(UUID_V7);
    expect(timeOrderedUuid(-1).slice(0, 13)).toBe('00000000-0000');
    expect(timeOrderedUuid(2 ** 50).slice(0, 13)).toBe('ffffffff-ffff');
  });

  it('sorts by time, and is unique within one millisecond', () => {
    const ids = [1_000, 1_001, 86_400_000, 1_800_000_000_000].map((now) => timeOrderedUuid(now));
    expect([...ids].sort()).toEqual(ids);
    const same = Array.from({ length: 10_000 }, () => timeOrderedUuid(5));
    expect(new Set(same).size).toBe(10_000);
  });
});

describe('SqliteQueue ids', () => {
  it('gives entries and receipts in the order they were made', async () => {
    let now = 1_000_000;
    const queue = new SqliteQueue(openDatabase(':memory:'), { maxReceives: 3, clock: { now: () => now } });
    const sent: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      sent.push(await queue.send('q', `m${i}`));
      now += 1;
    }
    expect(sent.every((id) => UUID_V7.test(id))).toBe(true);
    expect([...sent].sort()).toEqual(sent);
    const receipts: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const [message] = await queue.receive('q', { max: 1, visibilityTimeoutSeconds: 30 });
      receipts.push(message!.receiptHandle);
      now += 1;
    }
    expect([...receipts].sort()).toEqual(receipts);
  });

  it('a group commit writes the last page or two of the queue id index, not a page per message, with 10,000 entries queued', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-queue-ids-'));
    const db = openDatabase(join(dir, 'outpost.db'));
    try {
      db.pragma('wal_autocheckpoint = 0');
      let now = 1_700_000_000_000;
      const clock = { now: () => now };
      const log = new SqliteMessageLog(db, clock);
      const queue = new SqliteQueue(db, { maxReceives: 5, clock });
      const bodies = new SqliteMessageBodies(db);
      let n = 0;
      const batch = () => Array.from({ length: 7 }, () => acceptedMessage(`M${String((n += 1)).padStart(8, '0')}`));
      for (let i = 0; i < 1_430; i += 1) {
        commitAccepted(db, log, queue, bodies, batch());
        now += 3;
      }
      const indexPages = pagesOf(db, 'sqlite_autoindex_queue_messages_1');
      expect(indexPages.size).toBeGreaterThan(30);
      // The pages the next commits write, as the WAL's frame headers name them.
      db.pragma('wal_checkpoint(TRUNCATE)');
      for (let i = 0; i < 10; i += 1) {
        commitAccepted(db, log, queue, bodies, batch());
        now += 3;
      }
      const indexFrames = pagesInWal(db, join(dir, 'outpost.db')).filter((page) => indexPages.has(page)).length;
      // Random UUIDs: about 9 a commit (one per message and the splits); in time order, the last leaf and a parent now and then.
      expect(indexFrames / 10).toBeLessThanOrEqual(2.5);
    } finally {
      db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the queue receipt index (migration 14)', () => {
  it('is not written when messages are queued, only when they are received', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-queue-receipts-'));
    const path = join(dir, 'outpost.db');
    const db = openDatabase(path);
    try {
      db.pragma('wal_autocheckpoint = 0');
      const queue = new SqliteQueue(db, { maxReceives: 5 });
      // Some in flight, so that the index has pages; then a checkpoint, and only new messages queued.
      for (let i = 0; i < 200; i += 1) await queue.send('scan', `in flight ${i}`);
      expect(await queue.receive('scan', { max: 200, visibilityTimeoutSeconds: 60 })).toHaveLength(200);
      const receiptPages = pagesOf(db, 'queue_messages_receipt');
      expect(receiptPages.size).toBeGreaterThan(0);
      db.pragma('wal_checkpoint(TRUNCATE)');
      for (let i = 0; i < 20; i += 1) await queue.send('scan', `waiting ${i}`);
      expect(pagesInWal(db, path).filter((page) => receiptPages.has(page))).toEqual([]);
      // A receive gives a handle, which the index holds: the delete by handle finds the entry.
      const [received] = await queue.receive('scan', { max: 1, visibilityTimeoutSeconds: 60 });
      const receiptPagesNow = pagesOf(db, 'queue_messages_receipt');
      expect(pagesInWal(db, path).some((page) => receiptPagesNow.has(page))).toBe(true);
      await queue.delete('scan', received!.receiptHandle);
      expect(await queue.depth('scan')).toEqual({ visible: 19, inFlight: 200, delayed: 0 });
    } finally {
      db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is what SQLite uses to find an entry by its handle, and keeps handles unique', () => {
    const db = openDatabase(':memory:');
    try {
      for (const sql of ['DELETE FROM queue_messages WHERE queue = ? AND receipt = ?', 'UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND receipt = ?']) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...sql.split('?').slice(1).map(() => 'x')) as Array<{ detail: string }>).map((row) => row.detail).join('; ');
        expect(plan, sql).toMatch(/USING INDEX queue_messages_receipt/);
      }
      const insert = db.prepare("INSERT INTO queue_messages (id, queue, body, visible_at, receipt, sent_at) VALUES (?, 'scan', 'b', 0, ?, 0)");
      insert.run('a', null);
      insert.run('b', null);
      insert.run('c', 'handle-1');
      expect(() => insert.run('d', 'handle-1')).toThrow(/UNIQUE constraint failed/);
    } finally {
      db.close();
    }
  });
});
