// When a worker thread of the relay that died may be started again (counter-thread.ts,
// acceptance-thread.ts start theirs at the next call or batch). A worker that dies at once every
// time — its database cannot be opened, a module fails to load — would otherwise be started again
// for every call: a new thread, a module graph loaded through tsx and a database opened, over and
// over, taking a core from the SMTP sessions while every call fails anyway. So the first death
// restarts at the next call (a worker that served calls and then died is most likely a one-off),
// and each further death before a worker has answered anything doubles the wait, up to a ceiling.
// Calls made meanwhile fail at once: their sessions answer 451 and the clients retry.
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { errorMessage } from '../../core/log.js';
import type { Logger } from '../../core/ports.js';

export const FIRST_RESTART_DELAY_MS = 250;
export const MAX_RESTART_DELAY_MS = 10_000;

export class RestartBackoff {
  /** Deaths in a row with no answer from a worker in between. */
  private deaths = 0;
  private notBefore = 0;

  constructor(
    private readonly firstDelayMs = FIRST_RESTART_DELAY_MS,
    private readonly maxDelayMs = MAX_RESTART_DELAY_MS,
    // Monotonic: the relay's clock may be moved (tests) and the wall clock may jump.
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A worker answered: it works, and the next death restarts at once again. */
  served(): void {
    this.deaths = 0;
    this.notBefore = 0;
  }

  /** A worker died: returns how long the next one must wait before it starts (0: at the next call). */
  died(): number {
    this.deaths += 1;
    const delay = this.deaths === 1 ? 0 : Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** (this.deaths - 2));
    this.notBefore = this.now() + delay;
    return delay;
  }

  /** Milliseconds until a worker may be started again; 0 when it may be now. */
  waitMs(): number {
    return Math.max(0, Math.ceil(this.notBefore - this.now()));
  }
}

/**
 * How a worker thread's client closes: resolves once `register`'s signal is called (the work in
 * hand is done) or after `timeoutMs`, whichever comes first.
 */
export function untilDrained(timeoutMs: number, register: (signal: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    register(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * What the counter and acceptance clients do with a worker their watchdog gave up on: count it as a
 * death (a worker that hangs again at once is started again less and less often), log it as hung
 * with `fields` (what was in hand), and terminate it. JavaScript is interrupted at once; a native
 * call that never returns keeps its thread, but no work goes to it again. Returns the error the
 * work in hand fails with.
 */
export function giveUpOnHungWorker(
  worker: Worker,
  context: { what: string; logger: Logger; restarts: RestartBackoff; watchdogMs: number },
  silentMs: number,
  message: string,
  fields: Record<string, unknown>,
): Error {
  const restartInMs = context.restarts.died();
  context.logger.error(`${context.what} hung: ${message}`, { silentMs: Math.round(silentMs), watchdogMs: context.watchdogMs, threadId: worker.threadId, ...fields, restartInMs });
  void worker.terminate().catch(() => undefined);
  return new Error(`the ${context.what} did not answer for ${Math.round(silentMs)} ms (hung); it is terminated`);
}

/** queue.threadWatchdogSeconds' default: how long a worker thread may be silent with work in hand. */
export const DEFAULT_WATCHDOG_MS = 60_000;
/**
 * The least time a new worker thread is given until it is first heard from (its first answer or
 * heartbeat): it loads its modules first (through tsx), which takes seconds on a busy machine and
 * is no hang. With the default watchdog time it changes nothing.
 */
export const STARTUP_WATCHDOG_MS = 30_000;

/**
 * The watchdog of one worker thread: a thread whose event loop is blocked (a loop that never ends
 * on a crafted message, a regular expression gone catastrophic, a native call that never returns)
 * does not die, it only stops answering. `watch` when work is handed over (it keeps the time of a
 * watch already running), `heard` at each answer or heartbeat, `stop` when nothing is in hand; if
 * `timeoutMs` pass while watching with nothing heard (until the thread is first heard from, at
 * least `startupMs`), `onSilent` is called once, with how long the thread was silent. A
 * `timeoutMs` of 0 never calls it (queue.threadWatchdogSeconds: 0).
 */
export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private heardAt = 0;
  private heardOnce = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly onSilent: (silentMs: number) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly startupMs = STARTUP_WATCHDOG_MS,
  ) {}

  watch(): void {
    if (this.timeoutMs <= 0 || this.timer) return;
    this.heardAt = this.now();
    this.arm(this.limitMs());
  }

  /** Cheap (no timer is touched but the first time): called for every answer of a busy thread. */
  heard(): void {
    this.heardAt = this.now();
    if (this.heardOnce) return;
    this.heardOnce = true;
    // The startup allowance is over: a watch running is due after the watchdog time.
    if (this.timer) {
      this.stop();
      this.arm(this.timeoutMs);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private limitMs(): number {
    return this.heardOnce ? this.timeoutMs : Math.max(this.timeoutMs, this.startupMs);
  }

  private arm(inMs: number): void {
    // Unref'd: a watchdog alone never keeps the process alive.
    this.timer = setTimeout(() => this.check(), inMs).unref();
  }

  private check(): void {
    const silentMs = this.now() - this.heardAt;
    const limitMs = this.limitMs();
    if (silentMs < limitMs) return this.arm(Math.ceil(limitMs - silentMs));
    this.timer = undefined;
    this.onSilent(silentMs);
  }
}

/** What superviseWorker needs of the counter or acceptance client that owns the worker. */
export interface WorkerSupervision<Answer> {
  /** Creates the Worker (a failure to create it counts as a death, and is thrown on). */
  start(): Worker;
  /** 'counter worker thread', 'acceptance writer thread': how the logs name it. */
  what: string;
  logger: Logger;
  restarts: RestartBackoff;
  watchdogMs: number;
  /** Whether `worker` is the client's current one (a watchdog of one it has replaced stays quiet). */
  isCurrent(worker: Worker): boolean;
  /** Makes the client forget its current worker (the one `isCurrent` said it is), and its watchdog. */
  forget(): void;
  /** Logged when the watchdog gives up: what happens to the work in hand, and what it is. */
  hung: { message: string; inHand(): Record<string, unknown> };
  /** The watchdog gave up on the worker (counted as a death, logged, terminated): fail the work in hand with `failure`. */
  onHung(failure: Error): void;
  /** An answer of the worker (never one of a worker given up on); the watchdog has heard it. */
  onAnswer(answer: Answer, watchdog: Watchdog): void;
  /** The worker exited (not one given up on): `cause` is the error it reported before, if any. */
  onExit(code: number, cause: unknown): void;
}

/**
 * Starts a worker thread for the counter or acceptance client, with what both do around it: a
 * watchdog that counts a hung worker as a death, logs it with what it had in hand and terminates
 * it (giveUpOnHungWorker); answers of a worker given up on are dropped; an answer tells the
 * backoff that the worker serves; an 'error' is logged (it is always followed by 'exit', where the
 * client fails what was in hand); an exit of a worker that was not given up on is the client's to
 * handle.
 */
export function superviseWorker<Answer>(supervision: WorkerSupervision<Answer>): { worker: Worker; watchdog: Watchdog } {
  const { what, logger, restarts, watchdogMs } = supervision;
  let worker: Worker;
  try {
    worker = supervision.start();
  } catch (error: unknown) {
    // No thread to be had (out of threads or memory): counted as a death, so the work that
    // follows fails at once for a while instead of each trying again.
    restarts.died();
    throw error;
  }
  // Set once the watchdog has given up on it: its work in hand was failed, and another worker may be serving the next.
  let hung = false;
  const watchdog = new Watchdog(watchdogMs, (silentMs) => {
    if (!supervision.isCurrent(worker)) return;
    hung = true;
    supervision.forget();
    // Counted as a death before the work is failed (failing it may hand over the next, which must see the wait).
    const failure = giveUpOnHungWorker(worker, { what, logger, restarts, watchdogMs }, silentMs, supervision.hung.message, supervision.hung.inHand());
    supervision.onHung(failure);
  });
  // What the worker died of, when it says (an uncaught error, a database it cannot open).
  let cause: unknown;
  worker.on('message', (answer: Answer) => {
    // A hung worker that answers after all: its work was failed already.
    if (hung) return;
    watchdog.heard();
    restarts.served();
    supervision.onAnswer(answer, watchdog);
  });
  worker.on('error', (error: unknown) => {
    cause = error;
    logger.error(`${what} failed`, { error: errorMessage(error), stack: error instanceof Error ? error.stack : undefined });
  });
  worker.on('exit', (code) => {
    watchdog.stop();
    // A hung worker's work was failed and its end counted when the watchdog gave up on it.
    if (hung) return;
    if (supervision.isCurrent(worker)) supervision.forget();
    supervision.onExit(code, cause);
  });
  return { worker, watchdog };
}
