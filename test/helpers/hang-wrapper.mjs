// The entry of every worker thread a test records (worker-faults.ts): installs the test's hang
// switch, then runs the real worker module, whose URL is the last of the thread's argv. Each
// 'message' listener the worker module adds to its parentPort is wrapped: on the message HANG
// (posted by hangOnNextMessage) the thread blocks for good in Atomics.wait, as a thread stuck in a
// native call or in a loop that never ends would — it neither answers nor dies until it is
// terminated — and the module's own listener never sees that message. No listener of its own is
// added (one would start the port before the module listens, and the messages posted meanwhile
// would reach only it). Test code only: production code has no hang switch.
import { parentPort } from 'node:worker_threads';

const HANG = 'outpost-test:hang';

if (parentPort) {
  const port = parentPort;
  const on = port.on.bind(port);
  port.on = (type, listener) =>
    on(type, type !== 'message' ? listener : (message) => {
      if (message === HANG) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      else listener(message);
    });
}

await import(process.argv.at(-1));
