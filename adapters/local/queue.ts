// A queue with SQS semantics on SQLite: delayed delivery, visibility timeout, receive count,
// redrive to `<queue>-dlq` after `maxReceives` receives. Receipt handles change on every receive,
// so a stale handle cannot delete a message another worker now holds (as in SQS).
import type { Clock, DeadLetter, DeadLetterQueues, Queue, QueueName, ReceivedMessage } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { pooledRandomBytes } from '../../core/random-pool.js';
import { immediate, writesOf, type Db } from './sqlite.js';

/**
 * A UUID version 7 (RFC 9562): the 48-bit millisecond `now`, then 74 random bits. Queue entries
 * and receipt handles are keys of B-tree indexes: random UUIDs put each new one on a random leaf
 * page, which every commit then writes whole to the WAL (9 of a group commit's 31 frames for 7
 * messages); ids in time order go to the last page, written once for all of them (2 frames).
 */
export function timeOrderedUuid(now: number): string {
  const bytes = Buffer.allocUnsafe(16);
  bytes.writeUIntBE(Math.max(0, Math.min(Math.floor(now), 2 ** 48 - 1)), 0, 6);
  pooledRandomBytes(10).copy(bytes, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

interface Row {
  id: string;
  queue: string;
  body: string;
  receipt: string | null;
  receive_count: number;
  sent_at: number;
  first_received_at: number | null;
}

/** The port's receive options, and the single node's own: leave messages visible for less than `minAgeMs`. */
export interface LocalReceiveOptions {
  max: number;
  visibilityTimeoutSeconds: number;
  minAgeMs?: number;
}

export interface SqliteQueueOptions {
  maxReceives: number;
  clock?: Clock;
  /**
   * Connection for the consumer's bookkeeping (receive, delete, visibility), if not the main one:
   * the single node gives it one with synchronous=NORMAL (openSoftStateConnection). A power cut
   * may then forget the last receipts and deletions, never a message sent: the message is
   * received and handled again (at least once, as with SQS).
   */
  receiptsDb?: Db;
}

/** Outpost's message id named by a queue body, if any: never the body itself (it is mail data). */
function messageIdOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const envelope = 'envelope' in parsed && typeof parsed.envelope === 'object' && parsed.envelope !== null ? parsed.envelope : parsed;
    return 'messageId' in envelope && typeof envelope.messageId === 'string' ? envelope.messageId : undefined;
  } catch {
    return undefined;
  }
}

export class SqliteQueue implements Queue, DeadLetterQueues {
  private readonly clock: Clock;
  private readonly receipts: Db;
  private readonly deadLetterListeners: Array<(deadLetter: DeadLetter) => void> = [];

  constructor(
    private readonly db: Db,
    private readonly options: SqliteQueueOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.receipts = options.receiptsDb ?? db;
  }

  /** Committed with the connection's other writes of this turn of the event loop (sqlite.ts TurnWrites): sent once the promise resolves. */
  async send(queue: string, body: string, options: { delaySeconds?: number } = {}): Promise<string> {
    const now = this.clock.now();
    const id = timeOrderedUuid(now);
    return writesOf(this.db).run(() => this.sendNow(queue, body, options, now, id));
  }

  /** send(), synchronously: for callers that write it inside their own transaction (group commit). */
  sendNow(queue: string, body: string, options: { delaySeconds?: number } = {}, now = this.clock.now(), id = timeOrderedUuid(now)): string {
    this.db
      .prepare('INSERT INTO queue_messages (id, queue, body, visible_at, sent_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, queue, body, now + Math.max(0, options.delaySeconds ?? 0) * 1000, now);
    return id;
  }

  /** Calls `listener` for every message moved to a dead-letter queue (the operator's alert). */
  onDeadLetter(listener: (deadLetter: DeadLetter) => void): void {
    this.deadLetterListeners.push(listener);
  }

  async redrive(queue: QueueName): Promise<number> {
    return this.db
      .prepare('UPDATE queue_messages SET queue = ?, visible_at = ?, receipt = NULL, receive_count = 0, first_received_at = NULL WHERE queue = ?')
      .run(queue, this.clock.now(), `${queue}-dlq`).changes;
  }

  /**
   * As the port's receive; with `minAgeMs`, only messages visible for at least that long are
   * handed out (the single node's pipeline defers new messages during an ingress burst: poller.ts).
   */
  async receive(queue: string, options: LocalReceiveOptions): Promise<ReceivedMessage[]> {
    const deadLetters: DeadLetter[] = [];
    const received = this.receiveRows(queue, options, deadLetters);
    for (const deadLetter of deadLetters) {
      for (const listener of this.deadLetterListeners) listener(deadLetter);
    }
    return received;
  }

  private receiveRows(queue: string, options: LocalReceiveOptions, deadLetters: DeadLetter[]): ReceivedMessage[] {
    const now = this.clock.now();
    const visibleBy = now - Math.max(0, options.minAgeMs ?? 0);
    return immediate(this.receipts, () => {
      const rows = this.receipts
        .prepare('SELECT * FROM queue_messages WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, sent_at LIMIT ?')
        .all(queue, visibleBy, options.max) as Row[];
      const received: ReceivedMessage[] = [];
      for (const row of rows) {
        if (row.receive_count >= this.options.maxReceives) {
          // Redrive: it has been received maxReceives times without being deleted.
          this.receipts
            .prepare('UPDATE queue_messages SET queue = ?, visible_at = ?, receipt = NULL, receive_count = 0 WHERE id = ?')
            .run(`${queue}-dlq`, now, row.id);
          const messageId = messageIdOf(row.body);
          deadLetters.push({ queue, queueMessageId: row.id, receiveCount: row.receive_count, ...(messageId !== undefined ? { messageId } : {}) });
          continue;
        }
        // A message received before and not deleted (its handler failed, timed out, or died or
        // hung with it) comes alone: a receive holds either first receives only or that one message,
        // so that the poller can run it by itself (poller.ts SuspectGate) and a message that hangs
        // every thread that takes it does not take its neighbours' receive counts up with its own.
        const again = row.receive_count >= 1;
        if (again && received.length > 0) continue;
        const receipt = timeOrderedUuid(now);
        const firstReceivedAt = row.first_received_at ?? now;
        this.receipts
          .prepare(
            'UPDATE queue_messages SET visible_at = ?, receipt = ?, receive_count = receive_count + 1, first_received_at = ? WHERE id = ?',
          )
          .run(now + options.visibilityTimeoutSeconds * 1000, receipt, firstReceivedAt, row.id);
        received.push({
          messageId: row.id,
          receiptHandle: receipt,
          body: row.body,
          receiveCount: row.receive_count + 1,
          sentAt: row.sent_at,
          firstReceivedAt,
        });
        if (again) break;
      }
      return received;
    });
  }

  /** Committed with the connection's other writes of this turn (see send). */
  async delete(queue: string, receiptHandle: string): Promise<void> {
    await writesOf(this.receipts).run(() => this.receipts.prepare('DELETE FROM queue_messages WHERE queue = ? AND receipt = ?').run(queue, receiptHandle));
  }

  async changeVisibility(queue: string, receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void> {
    this.receipts
      .prepare('UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND receipt = ?')
      .run(this.clock.now() + visibilityTimeoutSeconds * 1000, queue, receiptHandle);
  }

  /**
   * Makes every in-flight message visible again. The single node is the only consumer of its
   * queues, so at start-up nothing can still be in flight: whatever is was being handled by a
   * process that died (SIGKILL, power cut), and need not wait out its visibility timeout.
   */
  recoverInFlight(): number {
    return this.db.prepare('UPDATE queue_messages SET visible_at = ?, receipt = NULL WHERE receipt IS NOT NULL AND visible_at > ?').run(this.clock.now(), this.clock.now()).changes;
  }

  /** The bodies of every message in `queues`, whatever their state (housekeeping reads what jobs refer to). */
  bodies(queues: string[]): string[] {
    if (queues.length === 0) return [];
    const rows = this.db.prepare(`SELECT body FROM queue_messages WHERE queue IN (${queues.map(() => '?').join(', ')})`).all(...queues) as Array<{ body: string }>;
    return rows.map((row) => row.body);
  }

  async depth(queue: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
    const now = this.clock.now();
    const row = this.db
      .prepare(
        `SELECT
           SUM(CASE WHEN visible_at <= ? THEN 1 ELSE 0 END) AS visible,
           SUM(CASE WHEN visible_at > ? AND receipt IS NOT NULL THEN 1 ELSE 0 END) AS inFlight,
           SUM(CASE WHEN visible_at > ? AND receipt IS NULL THEN 1 ELSE 0 END) AS delayed
         FROM queue_messages WHERE queue = ?`,
      )
      .get(now, now, now, queue) as { visible: number | null; inFlight: number | null; delayed: number | null };
    return { visible: row.visible ?? 0, inFlight: row.inFlight ?? 0, delayed: row.delayed ?? 0 };
  }
}
