// The counter worker thread (counter-thread.ts starts it): a SqliteCounterStore on a soft-state
// connection of its own, answering the relay thread's calls one at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../../core/log.js';
import { SqliteCounterStore } from './counter-store.js';
import type { CounterAnswer, CounterCall } from './counter-thread.js';
import { openSoftStateConnection } from './sqlite.js';

const port = parentPort;
if (!port) throw new Error('adapters/local/counter-worker.ts runs as a worker thread (counter-thread.ts starts it)');
const { databasePath } = workerData as { databasePath: string };
// The time of the call being answered: the caller's reading, carried with the call.
let callTime = 0;
const store = new SqliteCounterStore(openSoftStateConnection(databasePath), { now: () => callTime });

async function answer(call: CounterCall): Promise<CounterAnswer> {
  callTime = call.now;
  try {
    const method = store[call.method] as (...args: unknown[]) => Promise<unknown>;
    return { id: call.id, ok: true, value: await method.apply(store, call.args) };
  } catch (error: unknown) {
    const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
    return { id: call.id, ok: false, message: errorMessage(error), ...(code ? { code } : {}) };
  }
}

port.on('message', (calls: CounterCall[]) => {
  void (async () => {
    const answers: CounterAnswer[] = [];
    for (const call of calls) answers.push(await answer(call));
    port.postMessage(answers);
  })();
});
