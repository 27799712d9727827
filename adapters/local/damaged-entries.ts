// Start-up check of the single node's pipeline queues, so that damage on disk neither stops the
// relay from starting nor fails in silence:
// - a queue row whose body no longer parses can never be handled (left in place it would fail on
//   every receive until it reached the dead-letter queue): it is set aside, i.e. moved to the
//   table `damaged_entries` with its reason;
// - a message file that is missing, shorter than the message it held, or does not begin with a
//   header field cannot be delivered: the file (if any) moves to `<dataDir>/damaged/`, the entry
//   is recorded in `damaged_entries`, and the queue row stays, so that the pipeline finds the
//   content gone and bounces the message to its sender (5.3.0) as it does for any lost content.
// A message whose body the database holds (message_bodies, committed with its queue entry) has
// no file to lose: it is never damaged in this sense.
// The caller logs each entry; `npx outpost queue status` lists them; a later start does not
// report the same entry again.
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { z } from 'zod';
import type { Envelope } from '../../core/ports.js';
import type { Db } from './sqlite.js';

export const DAMAGED_DIR = 'damaged';

/** How to read the body of each pipeline queue: its schema, and where the envelope is in it. */
export type QueueBodyReaders = Record<string, (json: unknown) => { envelope: Envelope } | { problem: string }>;

/** A reader for queues whose body is the envelope itself, or holds it (deliver jobs). */
export function bodyReader<T>(schema: z.ZodType<T>, envelopeOf: (body: T) => Envelope): QueueBodyReaders[string] {
  return (json) => {
    const parsed = schema.safeParse(json);
    if (parsed.success) return { envelope: envelopeOf(parsed.data) };
    return { problem: `body is not a valid job (${parsed.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ')})` };
  };
}

export interface DamagedEntry {
  queue: string;
  queueMessageId: string;
  /** The queue id of the message, when the body still names one. */
  messageId: string | null;
  /** 'set-aside': the row left the queue; 'bounced': the file was damaged, the row stays for the pipeline to bounce. */
  action: 'set-aside' | 'bounced';
  reason: string;
  movedBlob: string | null;
  foundAt: number;
}

interface QueueRow {
  id: string;
  queue: string;
  body: string;
}

/** Entries whose message files are checked at once at start-up. */
const CHECK_CONCURRENCY = 32;
/** Bytes read from the start of a message file to see that it begins with a header field. */
const HEAD_BYTES = 1024;
/** A header field name (RFC 5322 §2.2: printable US-ASCII except colon) and its colon. */
const HEADER_FIELD_START = /^[\x21-\x39\x3b-\x7e]+:/;

async function blobProblem(path: string, envelope: Envelope): Promise<string | undefined> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error: unknown) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return 'message file is missing';
    throw error;
  }
  // A stored message holds at least the bytes the client sent (plus our trace header).
  if (size < envelope.size) return `message file is truncated (${size} of at least ${envelope.size} bytes)`;
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
    await handle.read(head, 0, head.length, 0);
    if (!HEADER_FIELD_START.test(head.toString('latin1'))) return 'message file does not begin with a header field';
  } finally {
    await handle.close();
  }
  return undefined;
}

async function problemOf(db: Db, row: QueueRow, readers: QueueBodyReaders, blobRoot: string): Promise<{ reason: string; messageId: string | null; blobKey: string | null } | undefined> {
  const reader = readers[row.queue];
  if (!reader) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(row.body);
  } catch {
    return { reason: 'body is not JSON', messageId: null, blobKey: null };
  }
  const read = reader(json);
  if ('problem' in read) return { reason: read.problem, messageId: null, blobKey: null };
  const { envelope } = read;
  if (!/^[A-Za-z0-9._/-]+$/.test(envelope.blobKey) || envelope.blobKey.includes('..')) {
    return { reason: 'body names an invalid message file', messageId: envelope.messageId, blobKey: null };
  }
  if (db.prepare('SELECT 1 FROM message_bodies WHERE key = ?').get(envelope.blobKey) !== undefined) return undefined;
  const problem = await blobProblem(join(blobRoot, envelope.blobKey), envelope);
  return problem ? { reason: problem, messageId: envelope.messageId, blobKey: envelope.blobKey } : undefined;
}

/**
 * Checks every entry of the queues `readers` knows (not their dead-letter queues) and deals with
 * the damaged ones as described above; returns them. Never throws for a damaged entry; an entry
 * it cannot check (an I/O error other than a missing file) is left alone and reported in `unchecked`.
 */
export async function setAsideDamagedEntries(
  db: Db,
  options: { dataDir: string; readers: QueueBodyReaders; now: number },
): Promise<{ damaged: DamagedEntry[]; unchecked: Array<{ queueMessageId: string; error: string }> }> {
  const blobRoot = join(options.dataDir, 'blobs');
  const queues = Object.keys(options.readers);
  const rows = db
    .prepare(
      `SELECT id, queue, body FROM queue_messages WHERE queue IN (${queues.map(() => '?').join(', ')})
       AND id NOT IN (SELECT queue_message_id FROM damaged_entries)`,
    )
    .all(...queues) as QueueRow[];
  const damaged: DamagedEntry[] = [];
  const unchecked: Array<{ queueMessageId: string; error: string }> = [];
  // A queue of thousands after an outage: check the files CHECK_CONCURRENCY at a time (each check
  // is a few file-system calls), then set the damaged ones aside one by one (two rows may share a file).
  const found: Array<{ index: number; row: QueueRow; problem: { reason: string; messageId: string | null; blobKey: string | null } }> = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < rows.length; index = next++) {
      const row = rows[index];
      if (!row) break;
      try {
        const problem = await problemOf(db, row, options.readers, blobRoot);
        if (problem) found.push({ index, row, problem });
      } catch (error: unknown) {
        unchecked.push({ queueMessageId: row.id, error: error instanceof Error ? error.message : String(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHECK_CONCURRENCY, rows.length) }, worker));
  const moved = new Map<string, string>();
  for (const { row, problem } of found.sort((a, b) => a.index - b.index)) {
    try {
      damaged.push(await setAside(db, row, problem, options, moved));
    } catch (error: unknown) {
      // Never a reason not to start: the entry stays where it is, and the pipeline deals with it.
      unchecked.push({ queueMessageId: row.id, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return { damaged, unchecked };
}

async function setAside(
  db: Db,
  row: QueueRow,
  found: { reason: string; messageId: string | null; blobKey: string | null },
  options: { dataDir: string; now: number },
  moved: Map<string, string>,
): Promise<DamagedEntry> {
  const blobRoot = join(options.dataDir, 'blobs');
  let movedBlob: string | null = null;
  if (found.blobKey && found.reason !== 'message file is missing') {
    movedBlob = moved.get(found.blobKey) ?? join(DAMAGED_DIR, `${row.id}-${basename(found.blobKey)}`);
    if (!moved.has(found.blobKey)) {
      await mkdir(join(options.dataDir, DAMAGED_DIR), { recursive: true, mode: 0o700 });
      await rename(join(blobRoot, found.blobKey), join(options.dataDir, movedBlob));
      moved.set(found.blobKey, movedBlob);
    }
  }
  const action = found.blobKey ? 'bounced' : 'set-aside';
  const entry: DamagedEntry = { queue: row.queue, queueMessageId: row.id, messageId: found.messageId, action, reason: found.reason, movedBlob, foundAt: options.now };
  db.transaction(() => {
    db.prepare(
      'INSERT INTO damaged_entries (queue, queue_message_id, message_id, action, body, reason, moved_blob, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(entry.queue, entry.queueMessageId, entry.messageId, entry.action, row.body, entry.reason, entry.movedBlob, entry.foundAt);
    if (action === 'set-aside') db.prepare('DELETE FROM queue_messages WHERE id = ?').run(row.id);
  })();
  return entry;
}

/** Entries set aside so far, newest first. */
export function listDamagedEntries(db: Db, limit = 100): DamagedEntry[] {
  const rows = db
    .prepare('SELECT queue, queue_message_id, message_id, action, reason, moved_blob, found_at FROM damaged_entries ORDER BY found_at DESC, id DESC LIMIT ?')
    .all(limit) as Array<{ queue: string; queue_message_id: string; message_id: string | null; action: string; reason: string; moved_blob: string | null; found_at: number }>;
  return rows.map((row) => ({
    action: row.action === 'bounced' ? 'bounced' : 'set-aside',
    queue: row.queue,
    queueMessageId: row.queue_message_id,
    messageId: row.message_id,
    reason: row.reason,
    movedBlob: row.moved_blob,
    foundAt: row.found_at,
  }));
}

export function countDamagedEntries(db: Db): number {
  const row = db.prepare('SELECT COUNT(*) AS n FROM damaged_entries').get() as { n: number };
  return row.n;
}
