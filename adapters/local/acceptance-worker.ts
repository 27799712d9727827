// The acceptance writer thread (acceptance-thread.ts starts it): commits each batch of accepted
// messages in one transaction on a synchronous=FULL connection of its own.
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../../core/log.js';
import type { Clock } from '../../core/ports.js';
import { commitAccepted } from './acceptance-batch.js';
import type { AcceptanceBatchAnswer, AcceptanceBatchRequest } from './acceptance-thread.js';
import { SqliteMessageBodies } from './message-body-store.js';
import { SqliteMessageLog } from './message-log.js';
import { SqliteQueue } from './queue.js';
import { failFastWhenBusy, openDatabase } from './sqlite.js';

const port = parentPort;
if (!port) throw new Error('adapters/local/acceptance-worker.ts runs as a worker thread (acceptance-thread.ts starts it)');
const { databasePath, maxReceives } = workerData as { databasePath: string; maxReceives: number };
// The relay's clock reading for the batch being committed (tests move time on the relay's thread).
let batchTime = 0;
const clock: Clock = { now: () => batchTime };
// Its only writes are the batches' commits, whose write lock commitAccepted waits for itself.
const db = failFastWhenBusy(openDatabase(databasePath));
const log = new SqliteMessageLog(db, clock);
const queue = new SqliteQueue(db, { maxReceives, clock });
const bodies = new SqliteMessageBodies(db);

port.on('message', (request: AcceptanceBatchRequest) => {
  batchTime = request.now;
  let answer: AcceptanceBatchAnswer = { ok: true };
  try {
    if (request.messages.length > 0) commitAccepted(db, log, queue, bodies, request.messages);
  } catch (error: unknown) {
    const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
    answer = { ok: false, message: errorMessage(error), ...(code ? { code } : {}) };
  }
  port.postMessage(answer);
});
