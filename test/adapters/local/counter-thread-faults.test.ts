// When the counter worker thread (adapters/local/counter-thread.ts) dies: the calls in hand fail
// at once with an error that says so (their sessions answer 451), the death is logged as JSON with
// its reason, the next call is served by a new worker, and a worker that keeps dying at start is
// not started again for every call. The threads die for real: of an uncaught error in the worker
// module, of terminate(), of a database it cannot open. A worker that hangs (its event loop
// blocked for real, worker-faults.ts) is treated as dead once calls have waited the watchdog's
// time for an answer.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ThreadedCounterStore } from '../../../adapters/local/counter-thread.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { RestartBackoff } from '../../../adapters/local/thread-restarts.js';
import { createLogger } from '../../../core/log.js';
import { waitFor } from '../../helpers/net.js';
import { crashOnNextMessage, exited, failedByWatchdog, hangOnNextMessage, jsonLines, newestWorker, refuseStarts, startedWorkers, workersOf } from '../../helpers/worker-faults.js';

vi.mock('node:worker_threads', async (importOriginal) => (await import('../../helpers/worker-faults.js')).recordingWorkers(await importOriginal()));

const MODULE = 'counter-worker.mjs';
/** Every call in these tests settles well within this: none is left hanging. */
const BOUNDED_MS = 10_000;

/** Settles `promise` or fails the test after BOUNDED_MS. */
function bounded<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${BOUNDED_MS} ms`)), BOUNDED_MS).unref())]);
}

describe('ThreadedCounterStore when its worker thread dies', () => {
  let dir: string;
  let path: string;
  let log: ReturnType<typeof jsonLines>;
  let store: ThreadedCounterStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-counter-faults-'));
    path = join(dir, 'outpost.db');
    openDatabase(path).close();
    log = jsonLines();
    startedWorkers.length = 0;
  });
  afterEach(async () => {
    await bounded(store.close());
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (databasePath = path, restarts = new RestartBackoff(100, 400), watchdogMs?: number): ThreadedCounterStore => {
    store = new ThreadedCounterStore(databasePath, createLogger('counters', { write: log.write }), undefined, restarts, watchdogMs);
    return store;
  };

  it('fails every call in hand when the worker dies of an uncaught error, logs why, and serves the next call from a new worker', async () => {
    open();
    await store.start();
    const first = newestWorker(MODULE);
    crashOnNextMessage(first.worker);
    const inHand = Array.from({ length: 20 }, () => store.add('events', 1, 60_000));
    const outcomes = await bounded(Promise.allSettled(inHand));
    expect(await exited(first)).toBe(1);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(outcome.status === 'rejected' ? String(outcome.reason) : '').toMatch(/the counter worker thread exited \(code 1\) before answering: .*Cannot read properties of null/);
    }
    // The error event, then the death, once each, with the reason and the calls it failed.
    expect(log.withMessage('counter worker thread failed')).toEqual([expect.objectContaining({ level: 'error', component: 'counters', error: expect.stringMatching(/Cannot read properties of null/), stack: expect.any(String) })]);
    expect(log.withMessage('counter worker thread died')).toEqual([expect.objectContaining({ level: 'error', code: 1, error: expect.stringMatching(/Cannot read properties of null/), calls: 20, restartInMs: 0 })]);

    // The next call starts a new worker at once; none of the failed calls was counted.
    expect(await bounded(store.add('events', 1, 60_000))).toBe(1);
    expect(workersOf(MODULE).at(-1)).not.toBe(first);
    expect(newestWorker(MODULE).worker.threadId).not.toBe(first.worker.threadId);
  });

  it('fails the calls in hand when the worker is terminated, and the next call is served by a new worker', async () => {
    open();
    await store.start();
    const first = newestWorker(MODULE);
    const inHand = Array.from({ length: 5 }, (_, i) => store.add(`key-${i}`, 1, 60_000));
    // After the calls have crossed (they cross after the poll phase), before they are all answered or not: either way none hangs.
    await new Promise((resolve) => setImmediate(resolve));
    void first.worker.terminate();
    const outcomes = await bounded(Promise.allSettled(inHand));
    expect(await exited(first)).toBe(1);
    const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
    for (const outcome of rejected) expect(String(outcome.reason)).toMatch(/exited \(code 1\) before answering/);
    // A call answered before the end counted; a failed one did not — or did, unanswered (the session answered 451 and the count holds a unit until its window ends).
    const counted = await Promise.all(Array.from({ length: 5 }, (_, i) => store.total(`key-${i}`, 60_000)));
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') expect(counted[i]).toBe(1);
    });
    expect(log.withMessage('counter worker thread died')).toEqual([expect.objectContaining({ code: 1, calls: rejected.length })]);
    expect(workersOf(MODULE)).toHaveLength(2);
  });

  it('logs a worker that dies with nothing in hand, and starts a new one at the next call', async () => {
    open();
    await store.start();
    const first = newestWorker(MODULE);
    await first.worker.terminate();
    await waitFor('the death to be logged', async () => log.withMessage('counter worker thread died').length === 1, BOUNDED_MS);
    expect(log.withMessage('counter worker thread died')[0]).toMatchObject({ code: 1, calls: 0, restartInMs: 0 });
    expect(await bounded(store.reserve({ limits: [{ key: 'k', units: 1, limit: 1, windowMs: 60_000 }] }))).toEqual({ ok: true });
    expect(workersOf(MODULE)).toHaveLength(2);
  });

  it('does not start a worker that cannot open its database for every call: each further death waits twice as long, the calls between fail at once', async () => {
    const missing = join(dir, 'not-yet', 'outpost.db');
    open(missing, new RestartBackoff(200, 800));
    await expect(bounded(store.start())).rejects.toThrow(/exited \(code 1\) before answering: .*(directory does not exist|unable to open)/);
    expect(log.withMessage('counter worker thread died')[0]).toMatchObject({ code: 1, restartInMs: 0, error: expect.stringMatching(/directory does not exist|unable to open/) });

    // A call every 10 ms, as sessions would make them, until the fourth death: each death a start, the calls between failing at once.
    const failures: string[] = [];
    await waitFor(
      'four deaths',
      async () => {
        failures.push(await bounded(store.total('k', 60_000).then(() => 'answered', (error: unknown) => String(error))));
        return log.withMessage('counter worker thread died').length >= 4;
      },
      { timeoutMs: BOUNDED_MS, intervalMs: 10 },
    );
    expect(failures.every((failure) => failure.startsWith('Error: the counter worker thread'))).toBe(true);
    expect(failures.some((failure) => /keeps dying; it is started again in \d+ ms/.test(failure))).toBe(true);
    expect(log.withMessage('counter worker thread died').map((line) => line.restartInMs)).toEqual([0, 200, 400, 800]);
    // One start per death, however many calls were made meanwhile.
    expect(workersOf(MODULE)).toHaveLength(4);
    expect(failures.length).toBeGreaterThan(20);

    // The database appears: once the wait is over, a worker starts, answers, and the backoff is forgotten.
    mkdirSync(join(dir, 'not-yet'));
    openDatabase(missing).close();
    await waitFor('a worker that answers', () => store.total('k', 60_000).then(() => true, () => false), { timeoutMs: BOUNDED_MS, intervalMs: 50 });
    const working = newestWorker(MODULE);
    await working.worker.terminate();
    await waitFor('the death to be logged', async () => log.withMessage('counter worker thread died').at(-1)?.calls === 0, BOUNDED_MS);
    expect(log.withMessage('counter worker thread died').at(-1)).toMatchObject({ restartInMs: 0 });
    expect(await bounded(store.add('k', 1, 60_000))).toBe(1);
  });

  it('closes without hanging while the worker is dead', async () => {
    open();
    await store.start();
    const first = newestWorker(MODULE);
    await first.worker.terminate();
    await bounded(store.close());
    await expect(store.total('k', 60_000)).rejects.toThrow(/closed/);
    // No worker was started again to close.
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('closes without hanging when the worker dies during the close, failing the calls in hand, and logs the death', async () => {
    open();
    await store.start();
    const first = newestWorker(MODULE);
    crashOnNextMessage(first.worker);
    const inHand = Array.from({ length: 3 }, () => store.add('events', 1, 60_000));
    // close() hands the calls over at once, and waits for them (up to its timeout, 10 s by default).
    const started = Date.now();
    await bounded(store.close());
    expect(Date.now() - started).toBeLessThan(5_000);
    const outcomes = await Promise.allSettled(inHand);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(log.withMessage('counter worker thread died')).toEqual([expect.objectContaining({ calls: 3 })]);
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('fails the calls at once when no thread can be had, counts it as a death, and starts a worker once the wait is over', async () => {
    open(path, new RestartBackoff(200, 800));
    refuseStarts(MODULE, 2);
    await expect(bounded(store.start())).rejects.toThrow(/cannot take the call: .*EAGAIN/);
    expect(log.withMessage('cannot hand calls to the counter worker thread')).toEqual([expect.objectContaining({ level: 'error', error: expect.stringMatching(/EAGAIN/), calls: 1 })]);
    // The second refusal is the second death in a row: the calls after it fail without trying.
    await expect(bounded(store.total('k', 60_000))).rejects.toThrow(/EAGAIN/);
    await expect(bounded(store.total('k', 60_000))).rejects.toThrow(/keeps dying; it is started again in \d+ ms/);
    expect(workersOf(MODULE)).toHaveLength(0);
    await waitFor('a worker that answers', () => store.total('k', 60_000).then(() => true, () => false), { timeoutMs: BOUNDED_MS, intervalMs: 50 });
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('fails the calls in hand of a worker that hangs once the watchdog time has passed with no answer, logs it, terminates the thread, and serves the next call from a new worker', async () => {
    const WATCHDOG_MS = 1000;
    open(path, new RestartBackoff(100, 400), WATCHDOG_MS);
    await store.start();
    const first = newestWorker(MODULE);
    const threadId = first.worker.threadId;
    hangOnNextMessage(first.worker);
    const sentAt = Date.now();
    const inHand = [store.add('events', 1, 60_000), store.add('events', 1, 60_000), store.reserve({ limits: [{ key: 'k', units: 1, limit: 5, windowMs: 60_000 }] })];
    await failedByWatchdog(inHand, sentAt, WATCHDOG_MS, /the counter worker thread did not answer for \d+ ms \(hung\); it is terminated/);
    expect(log.withMessage('counter worker thread hung')).toEqual([
      expect.objectContaining({ level: 'error', component: 'counters', silentMs: expect.any(Number), watchdogMs: WATCHDOG_MS, threadId, calls: 3, methods: { add: 2, reserve: 1 }, restartInMs: 0 }),
    ]);
    expect(Number(log.withMessage('counter worker thread hung')[0]?.silentMs)).toBeGreaterThanOrEqual(WATCHDOG_MS);
    // Terminated for real (Atomics.wait is interrupted), and not logged a second time as a death.
    expect(await exited(first)).toBe(1);
    expect(log.withMessage('counter worker thread died')).toEqual([]);

    // The next call starts a new worker; the hung calls never ran.
    expect(await bounded(store.add('events', 1, 60_000))).toBe(1);
    expect(workersOf(MODULE)).toHaveLength(2);
    expect(newestWorker(MODULE).worker.threadId).not.toBe(threadId);
  });

  it('does not take a worker with nothing in hand for a hung one, however long it is idle', async () => {
    open(path, new RestartBackoff(100, 400), 1000);
    await store.start();
    // Calls made more than the watchdog time apart, with idle spells longer than it between them.
    for (let i = 1; i <= 2; i += 1) {
      expect(await bounded(store.add('idle', 1, 60_000))).toBe(i);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
    }
    expect(log.withMessage('counter worker thread hung')).toEqual([]);
    expect(workersOf(MODULE)).toHaveLength(1);
  });
});
