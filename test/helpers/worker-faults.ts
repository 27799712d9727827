// Reaching the relay's worker threads from a test, to make them die for real. The threads are
// private to the objects that start them (counter-thread.ts, acceptance-thread.ts,
// pipeline-thread.ts), and no production code should hand them out; so a test file replaces
// node:worker_threads with the real module whose Worker also records every thread it starts:
//
//   vi.mock('node:worker_threads', async (importOriginal) =>
//     (await import('../helpers/worker-faults.js')).recordingWorkers(await importOriginal()));
//
// (imported inside the factory: vi.mock runs before the file's own imports).
//
// The threads are real: each runs its real worker module, and dies of a real uncaught error
// (crashOnNextMessage) or of terminate(), or hangs for real (hangOnNextMessage: its event loop
// blocked, until it is terminated). Only refuseStarts stands in for the system: no thread to be
// had cannot be brought about on a shared test machine.
import type * as WorkerThreads from 'node:worker_threads';
import type { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import { waitFor } from './net.js';

export interface StartedWorker {
  worker: Worker;
  /** The worker module's file name, e.g. counter-worker.mjs. */
  module: string;
  /** Date.now() when it was started. */
  startedAt: number;
  exitCode?: number;
}

/** Every worker thread started since the test file began, oldest first. */
export const startedWorkers: StartedWorker[] = [];

const HANG_WRAPPER = new URL('./hang-wrapper.mjs', import.meta.url);
/** hang-wrapper.mjs's HANG. */
const HANG = 'outpost-test:hang';

const refusals = new Map<string, { count: number; error: Error }>();

/**
 * The next `count` starts of `module` throw `error` from the Worker constructor, as Node does when
 * no thread can be created (ERR_WORKER_INIT_FAILED: out of threads or memory).
 */
export function refuseStarts(module: string, count: number, error = Object.assign(new Error('Worker initialization failure: EAGAIN'), { code: 'ERR_WORKER_INIT_FAILED' })): void {
  refusals.set(module, { count, error });
}

/** node:worker_threads, with a Worker that records itself in startedWorkers. */
export function recordingWorkers(actual: typeof WorkerThreads): typeof WorkerThreads {
  class RecordedWorker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      const module = String(args[0]).split('/').at(-1) ?? '';
      const refusal = refusals.get(module);
      if (refusal && refusal.count > 0) {
        refusal.count -= 1;
        throw refusal.error;
      }
      // Started through hang-wrapper.mjs, which runs the real module (the last of its argv) after installing the hang switch.
      const [url, options] = args;
      super(HANG_WRAPPER, { ...options, argv: [...(options?.argv ?? []), String(url)] });
      const entry: StartedWorker = { worker: this, module, startedAt: Date.now() };
      this.on('exit', (code) => (entry.exitCode = code));
      startedWorkers.push(entry);
    }
  }
  return { ...actual, Worker: RecordedWorker };
}

/** The workers started for `module` so far. */
export function workersOf(module: string): StartedWorker[] {
  return startedWorkers.filter((entry) => entry.module === module);
}

/** The newest worker of `module` (fails when none was started). */
export function newestWorker(module: string): StartedWorker {
  const entry = workersOf(module).at(-1);
  if (!entry) throw new Error(`no ${module} worker thread was started`);
  return entry;
}

/**
 * The next message the relay posts to `worker` is preceded by one the worker module cannot read
 * (null): reading it throws a TypeError nobody catches, and the thread dies of it with that next
 * message in hand — posted, never answered. The worker reads its messages in order, so it never
 * gets to the real one.
 */
export function crashOnNextMessage(worker: Worker): void {
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (value: unknown, transfer?: readonly WorkerThreads.TransferListItem[]) => {
    worker.postMessage = post;
    post(null);
    post(value, transfer);
  };
}

/**
 * The next message the relay posts to `worker` is preceded by one that blocks the thread for good
 * (hang-wrapper.mjs: Atomics.wait, before the worker module can read it): the thread neither
 * answers nor dies, with that next message in hand — posted, never answered — until it is
 * terminated. Heartbeats, timers and everything else on its event loop stop with it.
 */
export function hangOnNextMessage(worker: Worker): void {
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (value: unknown, transfer?: readonly WorkerThreads.TransferListItem[]) => {
    worker.postMessage = post;
    post(HANG);
    post(value, transfer);
  };
}

/** Blocks `worker`'s thread for good at its next turn (hang-wrapper.mjs), whatever it is doing. */
export function hangNow(worker: Worker): void {
  worker.postMessage(HANG);
}

/**
 * Awaits `inHand` (the calls or records handed to a worker that hangs) and checks that each failed
 * with `pattern`, no sooner than the watchdog's time after `sentAt` and not long after it.
 */
export async function failedByWatchdog(inHand: Array<Promise<unknown>>, sentAt: number, watchdogMs: number, pattern: RegExp): Promise<void> {
  const outcomes = await Promise.race([
    Promise.allSettled(inHand),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending ${watchdogMs + 10_000} ms after the hang`)), watchdogMs + 10_000).unref()),
  ]);
  const waited = Date.now() - sentAt;
  expect(waited).toBeGreaterThanOrEqual(watchdogMs - 5);
  expect(waited).toBeLessThan(watchdogMs + 3_000);
  for (const outcome of outcomes) {
    expect(outcome.status).toBe('rejected');
    expect(outcome.status === 'rejected' ? String(outcome.reason) : '').toMatch(pattern);
  }
}

/** Resolves once `entry`'s thread has exited, with its exit code (bounded). */
export async function exited(entry: StartedWorker, timeoutMs = 10_000): Promise<number> {
  return waitFor(`the ${entry.module} thread to exit`, async () => entry.exitCode, { timeoutMs, intervalMs: 10 });
}

/** Collects a Logger's JSON lines (createLogger's `write`), parsed, as an operator's log reader would. */
export function jsonLines(): { lines: Array<Record<string, unknown>>; write: (line: string) => void; withMessage(prefix: string): Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>),
    withMessage: (prefix) => lines.filter((line) => typeof line.message === 'string' && line.message.startsWith(prefix)),
  };
}
