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
import { errorMessage } from '../../core/log.js';
import { SqliteCounterStore } from './counter-store.js';
import type { CounterAnswer, CounterCall } from './counter-thread.js';
import { failFastWhenBusy, openSoftStateConnection, writeLocked } from './sqlite.js';

const port = parentPort;
if (!port) throw new Error('adapters/local/counter-worker.ts runs as a worker thread (counter-thread.ts starts it)');
const { databasePath } = workerData as { databasePath: string };
// The time of the call being answered: the caller's reading, carried with the call.
let callTime = 0;
// Every call runs inside the batch's transaction, whose write lock runBatch waits for itself.
const db = failFastWhenBusy(openSoftStateConnection(databasePath));
const store = new SqliteCounterStore(db, { now: () => callTime });

const failure = (id: number, error: unknown): CounterAnswer => {
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  return { id, ok: false, message: errorMessage(error), ...(code ? { code } : {}) };
};

/**
 * Runs every call of the batch inside one transaction. The store's methods do their SQLite work
 * before they return (their promises are already settled), so the whole batch runs and commits
 * before any answer is awaited, and no other message of the port can come in between.
 */
function runBatch(calls: CounterCall[]): Array<Promise<unknown>> {
  const results: Array<Promise<unknown>> = [];
  try {
    writeLocked(db, () => {
      for (const call of calls) {
        callTime = call.now;
        const method = store[call.method] as (...args: unknown[]) => Promise<unknown>;
        try {
          results.push(method.apply(store, call.args));
        } catch (error: unknown) {
          results.push(Promise.reject(error));
        }
      }
    });
  } catch (error: unknown) {
    for (const result of results) result.catch(() => undefined);
    throw error;
  }
  return results;
}

port.on('message', (calls: CounterCall[]) => {
  let results: Array<Promise<unknown>>;
  try {
    results = runBatch(calls);
  } catch (error: unknown) {
    // Nothing of the batch was committed: every call fails.
    port.postMessage(calls.map((call) => failure(call.id, error)));
    return;
  }
  void Promise.allSettled(results).then((settled) =>
    port.postMessage(settled.map((outcome, index): CounterAnswer => {
      const id = (calls[index] as CounterCall).id;
      return outcome.status === 'fulfilled' ? { id, ok: true, value: outcome.value } : failure(id, outcome.reason);
    })),
  );
});
