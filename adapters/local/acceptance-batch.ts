// Group commit of accepted messages on the single node. The durable step before `250` is one
// SQLite commit with synchronous=FULL (an fsync of the WAL), and better-sqlite3 runs it on the
// event loop: one commit per message serialises every session behind one fsync each. Messages
// whose DATA ends in the same turn of the event loop (while a commit blocks the loop, the other
// sessions' final dots wait in the kernel) are written together: their message-log records,
// 'received' events, scan queue entries and the bodies of the small ones (message-body-store.ts)
// in one IMMEDIATE transaction, one fsync for all, and
// only then is each of them answered 250. A failed commit fails every message of the batch
// (nothing of it was written), and each client is told to retry.
import type { AcceptedMessage } from '../../smtp-ec2/ingress.js';
import type { SqliteMessageBodies } from './message-body-store.js';
import type { SqliteMessageLog } from './message-log.js';
import type { SqliteQueue } from './queue.js';
import { immediate, type Db } from './sqlite.js';

interface Waiting {
  message: AcceptedMessage;
  resolve(): void;
  reject(error: unknown): void;
}

export class SqliteAcceptanceBatch {
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(
    private readonly db: Db,
    private readonly log: SqliteMessageLog,
    private readonly queue: SqliteQueue,
    private readonly bodies: SqliteMessageBodies,
  ) {}

  /** Resolves once the message (and its body, when it comes inline) is in the message log and the queue, durably, together with the others of its batch. */
  record(message: AcceptedMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ message, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // setImmediate runs after the poll phase: every DATA that ended in this turn has joined.
      setImmediate(() => this.commit());
    });
  }

  private commit(): void {
    const batch = this.waiting;
    this.waiting = [];
    this.scheduled = false;
    try {
      commitAccepted(this.db, this.log, this.queue, this.bodies, batch.map((item) => item.message));
    } catch (error: unknown) {
      for (const item of batch) item.reject(error);
      return;
    }
    for (const item of batch) item.resolve();
  }
}

/** Writes accepted messages in one IMMEDIATE transaction on `db` (synchronous=FULL: one fsync for all); throws if nothing was written. */
export function commitAccepted(db: Db, log: SqliteMessageLog, queue: SqliteQueue, bodies: SqliteMessageBodies, messages: AcceptedMessage[]): void {
  immediate(db, () => {
    for (const message of messages) {
      log.createNow(message.record);
      log.addEventNow(message.record.id, message.event.name, message.event.detail);
      if (message.content) bodies.insertNow(message.content.blobKey, message.content.bytes, message.record.receivedAt);
      queue.sendNow(message.queue, message.body);
    }
  });
}
