// When the acceptance writer thread (adapters/local/acceptance-thread.ts) dies: the batch in hand
// fails at once with an error that says so (its clients are answered 451 and retry), none of it is
// written, the death is logged as JSON with its reason, the next batch is committed by a new
// worker, and a worker that keeps dying at start is not started again for every batch. The
// threads die for real: of an uncaught error in the worker module, of terminate(), of a database
// it cannot open. A writer that hangs (its event loop blocked for real, worker-faults.ts) is
// treated as dead once its batch has waited the watchdog's time for an answer.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ThreadedAcceptanceBatch } from '../../../adapters/local/acceptance-thread.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { RestartBackoff } from '../../../adapters/local/thread-restarts.js';
import { createLogger } from '../../../core/log.js';
import { acceptedMessage as accepted } from '../../helpers/accepted-message.js';
import { waitFor } from '../../helpers/net.js';
import { crashOnNextMessage, exited, failedByWatchdog, hangOnNextMessage, jsonLines, newestWorker, refuseStarts, startedWorkers, workersOf } from '../../helpers/worker-faults.js';

vi.mock('node:worker_threads', async (importOriginal) => (await import('../../helpers/worker-faults.js')).recordingWorkers(await importOriginal()));

const MODULE = 'acceptance-worker.mjs';
/** Every batch in these tests settles well within this: none is left hanging. */
const BOUNDED_MS = 10_000;

function bounded<T>(promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${BOUNDED_MS} ms`)), BOUNDED_MS).unref())]);
}

describe('ThreadedAcceptanceBatch when its writer thread dies', () => {
  let dir: string;
  let path: string;
  let log: ReturnType<typeof jsonLines>;
  let batch: ThreadedAcceptanceBatch;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-acceptance-faults-'));
    path = join(dir, 'outpost.db');
    openDatabase(path).close();
    log = jsonLines();
    startedWorkers.length = 0;
  });
  afterEach(async () => {
    await bounded(batch.close());
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (databasePath = path, restarts = new RestartBackoff(100, 400), watchdogMs?: number): ThreadedAcceptanceBatch => {
    batch = new ThreadedAcceptanceBatch(databasePath, createLogger('acceptance', { write: log.write }), undefined, 5, restarts, watchdogMs);
    return batch;
  };
  /** The ids of `ids` that are in the message log and the queue (another connection reads them). */
  const stored = (ids: string[]): string[] => {
    const db = openDatabase(path);
    try {
      return ids.filter((id) => db.prepare('SELECT 1 FROM messages WHERE id = ?').get(id) !== undefined && db.prepare('SELECT 1 FROM queue_messages WHERE body LIKE ?').get(`%${id}%`) !== undefined);
    } finally {
      db.close();
    }
  };

  it('fails the whole batch in hand when the writer dies of an uncaught error, writes none of it, logs why, and commits the retried messages with a new writer', async () => {
    open();
    await batch.start();
    const first = newestWorker(MODULE);
    crashOnNextMessage(first.worker);
    const ids = ['D1', 'D2', 'D3'];
    const outcomes = await bounded(Promise.allSettled(ids.map((id) => batch.record(accepted(id, `body of ${id}`)))));
    expect(await exited(first)).toBe(1);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(outcome.status === 'rejected' ? String(outcome.reason) : '').toMatch(/the acceptance writer thread exited \(code 1\) before committing: .*null/);
    }
    expect(stored(ids)).toEqual([]);
    expect(log.withMessage('acceptance writer thread failed')).toEqual([expect.objectContaining({ level: 'error', component: 'acceptance', error: expect.stringMatching(/null/), stack: expect.any(String) })]);
    expect(log.withMessage('acceptance writer thread died')).toEqual([expect.objectContaining({ level: 'error', code: 1, error: expect.stringMatching(/null/), messages: 3, restartInMs: 0 })]);

    // The clients retry: a new writer commits the same messages, once each.
    await bounded(Promise.all(ids.map((id) => batch.record(accepted(id, `body of ${id}`)))));
    expect(stored(ids)).toEqual(ids);
    expect(workersOf(MODULE)).toHaveLength(2);
    expect(newestWorker(MODULE).worker.threadId).not.toBe(first.worker.threadId);
  });

  it('fails only the batch in hand: messages that arrive while the writer dies form the next batch, committed by a new writer', async () => {
    open();
    await batch.start();
    const first = newestWorker(MODULE);
    crashOnNextMessage(first.worker);
    const inHand = batch.record(accepted('H1'));
    // After the poll phase the batch with H1 is in the dying writer's hands; H2 and H3 wait for the next.
    await new Promise((resolve) => setImmediate(resolve));
    const next = [batch.record(accepted('H2')), batch.record(accepted('H3'))];
    await expect(bounded(inHand)).rejects.toThrow(/exited \(code 1\) before committing/);
    await bounded(Promise.all(next));
    expect(stored(['H1', 'H2', 'H3'])).toEqual(['H2', 'H3']);
    expect(workersOf(MODULE)).toHaveLength(2);
  });

  it('logs a writer that dies with nothing in hand, and starts a new one for the next batch', async () => {
    open();
    await batch.start();
    await newestWorker(MODULE).worker.terminate();
    await waitFor('the death to be logged', async () => log.withMessage('acceptance writer thread died').length === 1, BOUNDED_MS);
    expect(log.withMessage('acceptance writer thread died')[0]).toMatchObject({ code: 1, messages: 0, restartInMs: 0 });
    await bounded(batch.record(accepted('I1')));
    expect(stored(['I1'])).toEqual(['I1']);
    expect(workersOf(MODULE)).toHaveLength(2);
  });

  it('does not start a writer that cannot open its database for every batch: each further death waits twice as long, the batches between fail at once', async () => {
    // Its folder is a file: the writer can neither create the folder nor open the database in it.
    const blocker = join(dir, 'not-a-folder');
    writeFileSync(blocker, '');
    const missing = join(blocker, 'outpost.db');
    open(missing, new RestartBackoff(200, 800));
    await expect(bounded(batch.start())).rejects.toThrow(/exited \(code 1\) before committing: .*(ENOTDIR|EEXIST)/);
    expect(log.withMessage('acceptance writer thread died')[0]).toMatchObject({ code: 1, restartInMs: 0, error: expect.stringMatching(/ENOTDIR|EEXIST/) });

    // A call every 10 ms, as sessions would make them, until the fourth death: each death a start, the calls between failing at once.
    const failures: string[] = [];
    let n = 0;
    await waitFor(
      'four deaths',
      async () => {
        failures.push(await bounded(batch.record(accepted(`S${n++}`)).then(() => 'committed', (error: unknown) => String(error))));
        return log.withMessage('acceptance writer thread died').length >= 4;
      },
      { timeoutMs: BOUNDED_MS, intervalMs: 10 },
    );
    expect(failures.every((failure) => failure.startsWith('Error: the acceptance writer thread'))).toBe(true);
    expect(failures.some((failure) => /keeps dying; it is started again in \d+ ms/.test(failure))).toBe(true);
    expect(log.withMessage('acceptance writer thread died').map((line) => line.restartInMs)).toEqual([0, 200, 400, 800]);
    // One start per death, however many calls were made meanwhile.
    expect(workersOf(MODULE)).toHaveLength(4);
    expect(failures.length).toBeGreaterThan(20);

    // The database appears: once the wait is over, a writer starts and commits, and the backoff is forgotten.
    rmSync(blocker);
    openDatabase(missing).close();
    await waitFor('a writer that commits', () => batch.record(accepted(`T${n++}`)).then(() => true, () => false), { timeoutMs: BOUNDED_MS, intervalMs: 50 });
    await newestWorker(MODULE).worker.terminate();
    await waitFor('the death to be logged', async () => log.withMessage('acceptance writer thread died').at(-1)?.messages === 0, BOUNDED_MS);
    expect(log.withMessage('acceptance writer thread died').at(-1)).toMatchObject({ restartInMs: 0 });
    await bounded(batch.record(accepted('U1')));
  });

  it('closes without hanging while the writer is dead', async () => {
    open();
    await batch.start();
    await newestWorker(MODULE).worker.terminate();
    await bounded(batch.close());
    await expect(batch.record(accepted('C1'))).rejects.toThrow(/closed/);
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('closes without hanging when the writer dies during the close, failing the batch in hand, and logs the death', async () => {
    open();
    await batch.start();
    crashOnNextMessage(newestWorker(MODULE).worker);
    const inHand = ['K1', 'K2'].map((id) => batch.record(accepted(id)));
    const started = Date.now();
    await bounded(batch.close());
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await Promise.allSettled(inHand)).map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(stored(['K1', 'K2'])).toEqual([]);
    expect(log.withMessage('acceptance writer thread died')).toEqual([expect.objectContaining({ messages: 2 })]);
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('fails the batches at once when no thread can be had, counts it as a death, and starts a writer once the wait is over', async () => {
    open(path, new RestartBackoff(200, 800));
    refuseStarts(MODULE, 2);
    await expect(bounded(batch.start())).rejects.toThrow(/cannot take the batch: .*EAGAIN/);
    expect(log.withMessage('cannot hand a batch to the acceptance writer thread')).toEqual([expect.objectContaining({ level: 'error', error: expect.stringMatching(/EAGAIN/) })]);
    // The second refusal is the second death in a row: the batches after it fail without trying.
    await expect(bounded(batch.record(accepted('R1')))).rejects.toThrow(/EAGAIN/);
    await expect(bounded(batch.record(accepted('R2')))).rejects.toThrow(/keeps dying; it is started again in \d+ ms/);
    expect(workersOf(MODULE)).toHaveLength(0);
    await waitFor('a writer that commits', () => batch.record(accepted('R3')).then(() => true, () => false), { timeoutMs: BOUNDED_MS, intervalMs: 50 });
    expect(stored(['R1', 'R2', 'R3'])).toEqual(['R3']);
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('fails the batch in hand of a writer that hangs once the watchdog time has passed with no answer, logs it, terminates the thread, and commits the next batch with a new writer', async () => {
    const WATCHDOG_MS = 1000;
    open(path, new RestartBackoff(100, 400), WATCHDOG_MS);
    await batch.start();
    // Idle for longer than the watchdog time with nothing in hand: not hung.
    await new Promise((resolve) => setTimeout(resolve, WATCHDOG_MS + 200));
    const first = newestWorker(MODULE);
    const threadId = first.worker.threadId;
    hangOnNextMessage(first.worker);
    const sentAt = Date.now();
    const inHand = [batch.record(accepted('W1')), batch.record(accepted('W2'))];
    // After the poll phase W1 and W2 are in the hung writer's hands; W3 waits for the next batch.
    await new Promise((resolve) => setImmediate(resolve));
    const next = batch.record(accepted('W3'));
    await failedByWatchdog(inHand, sentAt, WATCHDOG_MS, /the acceptance writer thread did not answer for \d+ ms \(hung\); it is terminated/);
    expect(log.withMessage('acceptance writer thread hung')).toEqual([
      expect.objectContaining({ level: 'error', component: 'acceptance', silentMs: expect.any(Number), watchdogMs: WATCHDOG_MS, threadId, messages: 2, restartInMs: 0 }),
    ]);
    // The next batch goes to a new writer and is committed.
    await bounded(next);
    expect(stored(['W1', 'W2', 'W3'])).toEqual(['W3']);
    // Terminated for real, and not logged a second time as a death.
    expect(await exited(first)).toBe(1);
    expect(log.withMessage('acceptance writer thread died')).toEqual([]);
    expect(workersOf(MODULE)).toHaveLength(2);

    // The clients retry: committed, once each.
    await bounded(Promise.all([batch.record(accepted('W1')), batch.record(accepted('W2'))]));
    expect(stored(['W1', 'W2', 'W3'])).toEqual(['W1', 'W2', 'W3']);
    expect(log.withMessage('acceptance writer thread hung')).toHaveLength(1);
  });
});
