// The single node's group commit (acceptance-batch.ts) in a worker thread of its own. The commit
// is the fsync that makes accepted messages durable before their 250; run by better-sqlite3 on
// the relay's thread, it stopped every SMTP session for as long as the disk took (a fifth of the
// thread at full load). Here the relay's thread hands the batch over and goes on serving
// sessions; the worker commits it on its own synchronous=FULL connection and answers, and only
// then is each message of the batch answered 250.
//
// One batch is in the worker's hands at a time: messages that finish DATA while it commits wait
// for the next batch, so the slower the disk, the more messages share each fsync. A failed commit
// fails its whole batch (nothing of it was written; each client is told to retry). A worker that
// dies fails the batch in hand the same way (its commit may or may not have happened: a client
// that retries may send a message twice, never lose one) and is started again for the next; one
// that keeps dying before it commits anything is started again less and less often
// (thread-restarts.ts), the batches in between failing at once. A worker that hangs instead (its
// event loop blocked: no answer, no exit) is treated as dead once a batch has been in its hands
// for `watchdogMs`: the batch fails the same way, the thread is terminated, and the next batch
// goes to a new one (Watchdog in thread-restarts.ts).
import { Worker } from 'node:worker_threads';
import { errorMessage } from '../../core/log.js';
import { systemClock, type Clock, type Logger } from '../../core/ports.js';
import type { AcceptedMessage } from '../../smtp-ec2/ingress.js';
import { ownsItsMemory } from '../../smtp-ec2/small-message.js';
import { DEFAULT_WATCHDOG_MS, RestartBackoff, superviseWorker, untilDrained, type Watchdog } from './thread-restarts.js';

/** A batch, as it crosses to the worker: `now` is the relay's clock, the queue's time for it. */
export interface AcceptanceBatchRequest {
  now: number;
  messages: AcceptedMessage[];
}

/** The worker's answer: the whole batch committed, or none of it. */
export type AcceptanceBatchAnswer = { ok: true } | { ok: false; message: string; code?: string };

interface Waiting {
  /** None for the start's empty batch. */
  message?: AcceptedMessage;
  resolve(): void;
  reject(error: Error): void;
}

export class ThreadedAcceptanceBatch {
  private worker: Worker | undefined;
  /** The current worker's. */
  private watchdog: Watchdog | undefined;
  private waiting: Waiting[] = [];
  private inHand: Waiting[] | undefined;
  private scheduled = false;
  private closed = false;
  private idle: (() => void) | undefined;
  /** The worker close() ends: its exit is expected, not a death. */
  private ending: Worker | undefined;

  constructor(
    private readonly databasePath: string,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
    private readonly maxReceives = 5,
    private readonly restarts = new RestartBackoff(),
    /** How long a batch may be in hand with no answer before the worker counts as hung (0: never). */
    private readonly watchdogMs = DEFAULT_WATCHDOG_MS,
  ) {}

  /** Starts the worker and resolves once it has opened the database. */
  start(): Promise<void> {
    return this.enqueue(undefined);
  }

  /** Resolves once the message is in the message log and the queue, durably, with the others of its batch. */
  record(message: AcceptedMessage): Promise<void> {
    return this.enqueue(message);
  }

  private enqueue(message: AcceptedMessage | undefined): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the acceptance writer is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push(message ? { message, resolve, reject } : { resolve, reject });
      this.schedule();
    });
  }

  /** Waits for the messages in hand (at most `timeoutMs`), then ends the worker. */
  async close(timeoutMs = 30_000): Promise<void> {
    this.closed = true;
    if (this.inHand || this.waiting.length > 0) await untilDrained(timeoutMs, (signal) => (this.idle = signal));
    const worker = this.worker;
    this.worker = undefined;
    this.ending = worker;
    await worker?.terminate();
  }

  private schedule(): void {
    if (this.scheduled || this.inHand) return;
    this.scheduled = true;
    // After the poll phase: every DATA that ended in this turn joins the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private send(): void {
    if (this.inHand || this.waiting.length === 0) {
      if (!this.inHand) this.idle?.();
      return;
    }
    const batch = this.waiting;
    this.waiting = [];
    this.inHand = batch;
    const request: AcceptanceBatchRequest = { now: this.clock.now(), messages: batch.flatMap((item) => (item.message ? [item.message] : [])) };
    const wait = this.worker ? 0 : this.restarts.waitMs();
    if (wait > 0) {
      // A worker that keeps dying at start: not started again for every batch (it was logged when it died).
      this.answered({ ok: false, message: `the acceptance writer thread keeps dying; it is started again in ${wait} ms` });
      return;
    }
    try {
      // The small messages' bytes are moved, not copied: the relay does not read them once they are
      // handed over (a batch that fails is never sent again). Only a buffer that is the whole of its
      // ArrayBuffer: moving a view into Node's shared pool would take its neighbours with it.
      const moved = request.messages.flatMap((message) => (message.content && ownsItsMemory(message.content.bytes) ? [message.content.bytes.buffer as ArrayBuffer] : []));
      this.ensureWorker().postMessage(request, moved);
      this.watchdog?.watch();
    } catch (error: unknown) {
      // A batch that cannot cross (a worker that cannot start): nothing written, each client retries.
      this.logger.error('cannot hand a batch to the acceptance writer thread', { error: errorMessage(error), messages: request.messages.length });
      this.answered({ ok: false, message: `the acceptance writer thread cannot take the batch: ${errorMessage(error)}` });
    }
  }

  private answered(answer: AcceptanceBatchAnswer): void {
    const batch = this.inHand ?? [];
    this.inHand = undefined;
    if (answer.ok) for (const item of batch) item.resolve();
    else {
      const failure = Object.assign(new Error(answer.message), answer.code ? { code: answer.code } : {});
      for (const item of batch) item.reject(failure);
    }
    this.send();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const { worker, watchdog } = superviseWorker<AcceptanceBatchAnswer>({
      start: () => new Worker(new URL('./acceptance-worker.mjs', import.meta.url), { workerData: { databasePath: this.databasePath, maxReceives: this.maxReceives } }),
      what: 'acceptance writer thread',
      logger: this.logger,
      restarts: this.restarts,
      watchdogMs: this.watchdogMs,
      isCurrent: (candidate) => this.worker === candidate,
      forget: () => {
        this.worker = undefined;
        this.watchdog = undefined;
      },
      hung: {
        message: 'no answer to the batch in hand; it failed (its clients are told to retry), the thread is terminated, and the next batch starts a new one',
        inHand: () => ({ messages: this.inHand?.filter((item) => item.message).length ?? 0 }),
      },
      onHung: (failure) => this.answered({ ok: false, message: failure.message }),
      onAnswer: (answer, watchdog) => {
        watchdog.stop();
        this.answered(answer);
      },
      onExit: (code, cause) => {
        const messages = this.inHand?.filter((item) => item.message).length ?? 0;
        const died = worker !== this.ending;
        // Counted before the batch is failed: answering it sends the next batch, which must see the wait.
        const restartInMs = died ? this.restarts.died() : 0;
        if (died) {
          this.logger.error('acceptance writer thread died; the batch in hand failed (its clients are told to retry), and the next batch starts it again', {
            code,
            ...(cause === undefined ? {} : { error: errorMessage(cause) }),
            messages,
            restartInMs,
          });
        }
        if (!this.inHand) return;
        const reason = cause === undefined ? '' : `: ${errorMessage(cause)}`;
        this.answered({ ok: false, message: `the acceptance writer thread exited (code ${code}) before committing${reason}` });
      },
    });
    this.worker = worker;
    this.watchdog = watchdog;
    return worker;
  }
}
