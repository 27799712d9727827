// The counter worker thread (counter-thread.ts starts it): a SqliteCounterStore on a soft-state
// connection of its own, answering the relay thread's calls one at a time, in order.
//
// The calls of one message (those the relay's thread made in one turn of its event loop) run in
// one IMMEDIATE transaction (its write lock waited for in short steps: sqlite.ts writeLocked),
// each call in a savepoint of its own: a call that fails is rolled back alone and answered with
// its error, the others keep their effects. One commit (one WAL append and one wal-index update)
// for the batch instead of one per call: the counter thread's CPU per message and the time the
// batch holds the database's write lock both fall. A commit that fails fails every call of the
// batch (none of them took effect); each session then answers 451.
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteCounterStore } from './counter-store.js';
import { runCounterBatch } from './counter-batch.js';
import type { CounterCall } from './counter-thread.js';
import { failFastWhenBusy, openSoftStateConnection } from './sqlite.js';

const port = parentPort;
if (!port) throw new Error('adapters/local/counter-worker.ts runs as a worker thread (counter-thread.ts starts it)');
const { databasePath } = workerData as { databasePath: string };
// The time of the call being answered: the caller's reading, carried with the call.
let callTime = 0;
// Every call runs inside the batch's transaction, whose write lock runCounterBatch waits for itself.
const db = failFastWhenBusy(openSoftStateConnection(databasePath));
const store = new SqliteCounterStore(db, { now: () => callTime });

port.on('message', (calls: CounterCall[]) => {
  void runCounterBatch(db, store, calls, (now) => (callTime = now)).then((answers) => port.postMessage(answers));
});
