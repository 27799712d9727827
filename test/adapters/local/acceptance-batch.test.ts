// Group commit of accepted messages: on a real SQLite database, and through SMTP on the real
// single node (sessions whose DATA ends together share one commit; a failed commit is a 451 for
// each of them and leaves nothing behind).
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitAccepted } from '../../../adapters/local/acceptance-batch.js';
import { SqliteMessageBodies } from '../../../adapters/local/message-body-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import type { AcceptedMessage } from '../../../smtp-ec2/ingress.js';
import { parseReply, rawMessage, rawSession, startE2eNode, type E2eNode } from '../../helpers/e2e-node.js';
import type { RawSmtp } from '../../helpers/smtp-client.js';
import { sqliteHandleForTests } from '../../../bin/local-stores.js';
import { acceptedMessage as accepted } from '../../helpers/accepted-message.js';

describe('commitAccepted on SQLite', () => {
  let dir: string;
  let db: Db;
  let commit: (messages: AcceptedMessage[]) => Promise<void>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-acceptance-'));
    db = openDatabase(join(dir, 'outpost.db'));
    const log = new SqliteMessageLog(db);
    const queue = new SqliteQueue(db, { maxReceives: 5 });
    const bodies = new SqliteMessageBodies(db);
    commit = async (messages) => commitAccepted(db, log, queue, bodies, messages);
  });
  afterAll(async () => {
    db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const count = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

  it('writes the log record, its event and the queue entry of every message of the batch', async () => {
    await commit(['A1', 'A2', 'A3'].map((id) => accepted(id)));
    expect(count('messages')).toBe(3);
    expect(count('message_events')).toBe(3);
    expect((db.prepare("SELECT COUNT(*) AS n FROM queue_messages WHERE queue = 'scan'").get() as { n: number }).n).toBe(3);
  });

  it('commits a batch together: one message that cannot be written fails it, and none is written', async () => {
    const before = count('queue_messages');
    // A1 exists already: its record violates the primary key, in the middle of the batch.
    await expect(commit(['B1', 'A1', 'B2'].map((id) => accepted(id)))).rejects.toThrow();
    expect(count('queue_messages')).toBe(before);
    expect(db.prepare("SELECT id FROM messages WHERE id IN ('B1', 'B2')").all()).toEqual([]);
  });

  it('leaves nothing of a batch whose event cannot be written half-way (a disk full after the event row, before its count)', async () => {
    const before = { messages: count('messages'), events: count('message_events'), queue: count('queue_messages'), counts: db.prepare('SELECT event, count FROM message_event_counts').all() };
    // The events of a batch run in its transaction with no savepoint of their own: E2's event row
    // is written, then its count fails, and the whole batch must go, E1 and that row included.
    db.exec("CREATE TEMP TRIGGER full_disk BEFORE UPDATE ON message_event_counts WHEN EXISTS (SELECT 1 FROM message_events WHERE message_id = 'E2') BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    try {
      await expect(commit(['E1', 'E2', 'E3'].map((id) => accepted(id)))).rejects.toThrow('database or disk is full');
    } finally {
      db.exec('DROP TRIGGER full_disk');
    }
    expect({ messages: count('messages'), events: count('message_events'), queue: count('queue_messages'), counts: db.prepare('SELECT event, count FROM message_event_counts').all() }).toEqual(before);
    expect(db.inTransaction).toBe(false);
    // The next batch commits as usual.
    await commit([accepted('E1')]);
    expect(count('messages')).toBe(before.messages + 1);
  });

  it('writes the body of a message that brings it in the same commit, and none of a failed batch', async () => {
    await commit([accepted('D1', 'From: a\r\n\r\none\r\n'), accepted('D2')]);
    expect(db.prepare('SELECT key, body, stored_at FROM message_bodies').all()).toEqual([{ key: 'messages/D1.eml', body: Buffer.from('From: a\r\n\r\none\r\n'), stored_at: 1 }]);
    // D1 again: its record fails the batch, so D3's body is not written either.
    await expect(commit([accepted('D3', 'From: b\r\n\r\n'), accepted('D1', 'From: c\r\n\r\n')])).rejects.toThrow();
    expect(count('message_bodies')).toBe(1);
  });
});

describe('group commit through SMTP on the single node', () => {
  let e2e: E2eNode;
  beforeAll(async () => {
    e2e = await startE2eNode();
    const acme = await e2e.tenant('acme', ['acme.test'], { mailsPerMinute: 1000, mailsPerHour: 1000 });
    await e2e.user(acme, 'alice@acme.test');
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  /** `n` sessions up to the 354 of DATA, then every message sent at once; the final replies. */
  async function sendTogether(n: number, tag: string): Promise<string[]> {
    const sessions: RawSmtp[] = [];
    try {
      for (let i = 0; i < n; i += 1) {
        const { smtp } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
        sessions.push(smtp);
        expect(await smtp.command('MAIL FROM:<alice@acme.test>')).toMatch(/^250 /);
        expect(await smtp.command(`RCPT TO:<r${i}@example.org>`)).toMatch(/^250 /);
        expect(await smtp.command('DATA')).toMatch(/^354 /);
      }
      sessions.forEach((smtp, i) => smtp.write(rawMessage('alice@acme.test', `r${i}@example.org`, `${tag} ${i}`)));
      return await Promise.all(sessions.map((smtp) => smtp.reply()));
    } finally {
      for (const smtp of sessions) smtp.close();
    }
  }

  const queuedIds = (replies: string[]) => replies.map((reply) => /queued as (\S+)/.exec(reply)?.[1]);

  it('answers 250 to every session whose DATA ends together, each message logged and queued', async () => {
    const replies = await sendTogether(8, 'together');
    for (const reply of replies) expect(reply).toMatch(/^250 2\.0\.0 .*queued as /);
    for (const id of queuedIds(replies)) {
      expect(id).toBeDefined();
      expect((await e2e.node.stores.log.get(id ?? ''))?.events.map((event) => event.event)).toContain('received');
    }
  });

  it('a commit that fails is a 451 4.3.0 for every message of it, which leaves no blob, body, log record or queue entry', async () => {
    const db = sqliteHandleForTests(e2e.node.stores);
    const blobsBefore = await blobFiles(e2e.dataDir);
    const bodies = () => (db.prepare('SELECT COUNT(*) AS n FROM message_bodies').get() as { n: number }).n;
    const bodiesBefore = bodies();
    const messagesBefore = (db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
    db.exec("CREATE TRIGGER refuse_queue BEFORE INSERT ON queue_messages BEGIN SELECT RAISE(ABORT, 'storage trouble'); END");
    let replies: string[];
    try {
      replies = await sendTogether(4, 'refused');
    } finally {
      db.exec('DROP TRIGGER refuse_queue');
    }
    for (const reply of replies) expect(parseReply(reply)).toMatchObject({ code: 451, enhanced: '4.3.0' });
    expect((db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n).toBe(messagesBefore);
    expect(bodies()).toBe(bodiesBefore);
    // The blobs of the refused messages are removed (asynchronously, after the reply).
    const deadline = Date.now() + 5000;
    while ((await blobFiles(e2e.dataDir)).length > blobsBefore.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await blobFiles(e2e.dataDir)).toEqual(blobsBefore);
    // The trouble gone, the next messages are accepted.
    for (const reply of await sendTogether(2, 'after')) expect(reply).toMatch(/^250 /);
  });
});

async function blobFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs', 'messages');
  try {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name)).sort();
  } catch {
    return [];
  }
}
