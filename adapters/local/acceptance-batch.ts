// The group commit of accepted messages on the single node: their message-log records,
// 'received' events, scan queue entries and the bodies of the small ones (message-body-store.ts)
// in one IMMEDIATE transaction on a synchronous=FULL connection, one fsync for all. The writer
// thread (acceptance-thread.ts) batches the messages and runs this; only after it returns is
// each of them answered 250. It writes all of a batch or nothing.
import type { AcceptedMessage } from '../../smtp-ec2/ingress.js';
import type { SqliteMessageBodies } from './message-body-store.js';
import type { SqliteMessageLog } from './message-log.js';
import type { SqliteQueue } from './queue.js';
import { writeLocked, type Db } from './sqlite.js';

/** Writes accepted messages in one IMMEDIATE transaction on `db` (synchronous=FULL: one fsync for all; the write lock waited for in short steps, see writeLocked); throws if nothing was written. */
export function commitAccepted(db: Db, log: SqliteMessageLog, queue: SqliteQueue, bodies: SqliteMessageBodies, messages: AcceptedMessage[]): void {
  writeLocked(db, () => {
    for (const message of messages) {
      log.createNow(message.record);
      log.addEventNow(message.record.id, message.event.name, message.event.detail);
      if (message.content) bodies.insertNow(message.content.blobKey, message.content.bytes, message.record.receivedAt);
      queue.sendNow(message.queue, message.body);
    }
  });
}
