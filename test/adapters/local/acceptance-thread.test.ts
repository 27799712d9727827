// The group commit in its writer thread (adapters/local/acceptance-thread.ts), on a real SQLite
// file: messages recorded together are committed together, with their bodies; a batch that
// cannot be written fails every message of it, writes none, and carries SQLite's error code (the
// ingress answers a full database 452); the queue entry takes the relay's clock; a close waits
// for the batch in hand.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThreadedAcceptanceBatch } from '../../../adapters/local/acceptance-thread.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import type { Logger } from '../../../core/ports.js';
import type { AcceptedMessage } from '../../../smtp-ec2/ingress.js';
import { standalone } from '../../../smtp-ec2/small-message.js';
import { acceptedMessage as accepted } from '../../helpers/accepted-message.js';

const logger: Logger = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: () => undefined };

describe('ThreadedAcceptanceBatch', () => {
  let dir: string;
  let db: Db;
  let now = Date.UTC(2026, 11, 2, 12, 0, 0);
  let batch: ThreadedAcceptanceBatch;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-acceptance-thread-'));
    db = openDatabase(join(dir, 'outpost.db'));
    batch = new ThreadedAcceptanceBatch(join(dir, 'outpost.db'), logger, { now: () => now });
    await batch.start();
  });
  afterAll(async () => {
    await batch.close();
    db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const count = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

  it('writes the record, event, queue entry and inline body of every message, visible to other connections once resolved', async () => {
    await Promise.all([batch.record(accepted('A1', 'From: a\r\n\r\none\r\n')), batch.record(accepted('A2')), batch.record(accepted('A3'))]);
    expect(count('messages')).toBe(3);
    expect(count('message_events')).toBe(3);
    expect(count('queue_messages')).toBe(3);
    const body = db.prepare("SELECT body FROM message_bodies WHERE key = 'messages/A1.eml'").get() as { body: Buffer } | undefined;
    expect(body?.body.toString()).toBe('From: a\r\n\r\none\r\n');
  });

  it('moves a body that is the whole of its memory to the writer instead of copying it, and commits it intact', async () => {
    const message = accepted('M1');
    const bytes = standalone([Buffer.from('From: m\r\n\r\n'), Buffer.from('moved\r\n')]);
    await batch.record({ ...message, content: { blobKey: 'messages/M1.eml', bytes } });
    // Moved: the relay's buffer is detached (it does not read it once handed over).
    expect(bytes.byteLength).toBe(0);
    const body = db.prepare("SELECT body FROM message_bodies WHERE key = 'messages/M1.eml'").get() as { body: Buffer } | undefined;
    expect(body?.body.toString()).toBe('From: m\r\n\r\nmoved\r\n');
  });

  it('fails a batch whose bodies were moved like any other: nothing of it written, and the next batch served', async () => {
    const before = count('queue_messages');
    const moved = (id: string) => ({ ...accepted(id), content: { blobKey: `messages/${id}.eml`, bytes: standalone([Buffer.from(`From: ${id}\r\n\r\nbody\r\n`)]) } });
    // M1 exists already: the batch fails on its record, after its bodies crossed.
    const outcomes = await Promise.allSettled([batch.record(moved('X1')), batch.record(moved('M1'))]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(count('queue_messages')).toBe(before);
    expect(db.prepare("SELECT key FROM message_bodies WHERE key = 'messages/X1.eml'").all()).toEqual([]);
    // The client's retry is a new message with new bytes: it is committed whole.
    await batch.record(moved('X2'));
    const body = db.prepare("SELECT body FROM message_bodies WHERE key = 'messages/X2.eml'").get() as { body: Buffer } | undefined;
    expect(body?.body.toString()).toBe('From: X2\r\n\r\nbody\r\n');
  });

  it('copies a body that is a view into a larger piece of memory, which stays whole', async () => {
    const larger = Buffer.allocUnsafeSlow(64);
    larger.fill('x');
    larger.write('From: v\r\n\r\nview\r\n', 8);
    const view = larger.subarray(8, 8 + 'From: v\r\n\r\nview\r\n'.length);
    await batch.record({ ...accepted('V1'), content: { blobKey: 'messages/V1.eml', bytes: view } });
    expect(larger.byteLength).toBe(64);
    expect(larger.subarray(0, 8).toString()).toBe('xxxxxxxx');
    const body = db.prepare("SELECT body FROM message_bodies WHERE key = 'messages/V1.eml'").get() as { body: Buffer } | undefined;
    expect(body?.body.toString()).toBe('From: v\r\n\r\nview\r\n');
  });

  it("dates the queue entries with the relay's clock, not the thread's", async () => {
    now += 3_600_000;
    await batch.record(accepted('C1'));
    const row = db.prepare("SELECT visible_at FROM queue_messages WHERE body LIKE '%C1%'").get() as { visible_at: number } | undefined;
    expect(row?.visible_at).toBe(now);
  });

  it('fails every message of a batch that cannot be written, writes none of it, and carries the SQLite code', async () => {
    const before = count('queue_messages');
    // A1 exists already: its record violates the primary key, in the middle of the batch.
    const outcomes = await Promise.allSettled([batch.record(accepted('B1', 'body')), batch.record(accepted('A1')), batch.record(accepted('B2'))]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const reason = outcomes[0]?.status === 'rejected' ? (outcomes[0].reason as Error & { code?: string }) : undefined;
    expect(reason?.code).toMatch(/^SQLITE_CONSTRAINT/);
    expect(count('queue_messages')).toBe(before);
    expect(db.prepare("SELECT id FROM messages WHERE id IN ('B1', 'B2')").all()).toEqual([]);
    expect(db.prepare("SELECT key FROM message_bodies WHERE key = 'messages/B1.eml'").all()).toEqual([]);
    // The next batch is served as usual.
    await batch.record(accepted('B3'));
    expect(db.prepare("SELECT id FROM messages WHERE id = 'B3'").all()).toHaveLength(1);
  });

  it('fails a batch that cannot cross to the worker (not plain data), writes none of it, and serves the next', async () => {
    const strange = { ...accepted('F1'), hook: () => 1 } as AcceptedMessage;
    await expect(batch.record(strange)).rejects.toThrow(/cannot take the batch/);
    expect(db.prepare("SELECT id FROM messages WHERE id = 'F1'").all()).toEqual([]);
    await batch.record(accepted('F2'));
    expect(db.prepare("SELECT id FROM messages WHERE id = 'F2'").all()).toHaveLength(1);
  });

  it('finishes the messages in hand before it closes, and refuses new ones after', async () => {
    const second = new ThreadedAcceptanceBatch(join(dir, 'outpost.db'), logger, { now: () => now });
    const inHand = ['E1', 'E2', 'E3'].map((id) => second.record(accepted(id)));
    await second.close();
    await expect(Promise.all(inHand)).resolves.toHaveLength(3);
    expect(db.prepare("SELECT id FROM messages WHERE id IN ('E1', 'E2', 'E3')").all()).toHaveLength(3);
    await expect(second.record(accepted('E4'))).rejects.toThrow(/closed/);
  });
});
