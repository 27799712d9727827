// The rate-limit counters of the single node's relay thread, kept by a worker thread of their
// own. A reservation is a few dozen SQLite statements in one IMMEDIATE transaction; on the relay's
// thread that was the largest single cost of a message (about 30 % of the thread at full load),
// and every SMTP session waited while it ran. Here the relay's thread only posts the call and
// goes on serving sessions; the worker runs the same SqliteCounterStore on its own connection to
// the same file, so the guarantees are the store's: each call is one transaction, calls run one
// at a time in the order they were made, and every other process (the CLI's unlock, the pipeline)
// sees the same rows.
//
// Calls made in one turn of the event loop travel in one message (and their answers in one).
// Each call carries the caller's clock reading, which is the store's time for it: a call counts
// at the moment the session made it, and a test's clock works across the thread.
// A worker that dies fails the calls in hand (the sessions answer 451 and the clients retry)
// and is started again for the next call; one that keeps dying before it answers anything is
// started again less and less often (thread-restarts.ts), the calls in between failing at once.
// A worker that hangs instead (its event loop blocked: answers stop, the thread lives on) is
// treated as dead once calls have been in hand for `watchdogMs` with no answer: the calls fail,
// the thread is terminated, and the next call starts a new one (Watchdog in thread-restarts.ts).
import { Worker } from 'node:worker_threads';
import type { CounterBucket, CounterStore, DistinctLimit, Hold, ReserveOutcome, WindowLimit } from '../../core/counters.js';
import { errorMessage } from '../../core/log.js';
import { systemClock, type Clock, type Logger } from '../../core/ports.js';
import type { CounterRows } from './memory-counter-store.js';
import { DEFAULT_WATCHDOG_MS, RestartBackoff, superviseWorker, untilDrained, type Watchdog } from './thread-restarts.js';

/** A call of a CounterStore method, as it crosses to the worker. */
export interface CounterCall {
  id: number;
  /** The caller's time when it made the call: the store's clock, on the worker, for this call. */
  now: number;
  method: CounterMethod;
  args: unknown[];
}

/** The worker's answer to one call. */
export type CounterAnswer = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string; code?: string };

/** The port's methods, and the SQLite store's own that the relay's in-memory counters use (relay-counters.ts). */
export type CounterMethod = keyof CounterStore | 'applyChanges' | 'rowsWithPrefixes';

interface Pending {
  method: CounterMethod;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class ThreadedCounterStore implements CounterStore {
  private worker: Worker | undefined;
  /** The current worker's. */
  private watchdog: Watchdog | undefined;
  private readonly pending = new Map<number, Pending>();
  private outbox: CounterCall[] = [];
  private flushScheduled = false;
  private nextId = 1;
  private closed = false;
  private drained: (() => void) | undefined;
  /** The worker close() ends: its exit is expected, not a death. */
  private ending: Worker | undefined;

  constructor(
    private readonly databasePath: string,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
    private readonly restarts = new RestartBackoff(),
    /** How long calls may be in hand with no answer before the worker counts as hung (0: never). */
    private readonly watchdogMs = DEFAULT_WATCHDOG_MS,
  ) {}

  reserve(request: { limits: WindowLimit[]; distinct?: DistinctLimit[]; hold?: Hold }): Promise<ReserveOutcome> {
    return this.call('reserve', [request]) as Promise<ReserveOutcome>;
  }

  settle(transaction: string, keep: string[]): Promise<void> {
    return this.call('settle', [transaction, keep]) as Promise<void>;
  }

  add(key: string, units: number, windowMs: number): Promise<number> {
    return this.call('add', [key, units, windowMs]) as Promise<number>;
  }

  total(key: string, windowMs: number): Promise<number> {
    return this.call('total', [key, windowMs]) as Promise<number>;
  }

  buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    return this.call('buckets', [key, windowMs]) as Promise<CounterBucket[]>;
  }

  countDistinct(key: string, windowMs: number): Promise<number> {
    return this.call('countDistinct', [key, windowMs]) as Promise<number>;
  }

  reset(key: string): Promise<void> {
    return this.call('reset', [key]) as Promise<void>;
  }

  purgeExpired(): Promise<number> {
    return this.call('purgeExpired', []) as Promise<number>;
  }

  /** SqliteCounterStore.applyChanges, in the worker. */
  applyChanges(changes: CounterRows): Promise<void> {
    return this.call('applyChanges', [changes]) as Promise<void>;
  }

  /** SqliteCounterStore.rowsWithPrefixes, in the worker. */
  rowsWithPrefixes(prefixes: string[]): Promise<CounterRows> {
    return this.call('rowsWithPrefixes', [prefixes]) as Promise<CounterRows>;
  }

  /** Starts the worker and resolves once it has opened the database (the first session need not wait for it). */
  async start(): Promise<void> {
    await this.call('total', ['outpost:counter-thread:warm-up', 1000]);
  }

  /** Waits for the calls in hand (at most `timeoutMs`), then ends the worker. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    this.flush();
    if (this.pending.size > 0) await untilDrained(timeoutMs, (signal) => (this.drained = signal));
    const worker = this.worker;
    this.worker = undefined;
    this.ending = worker;
    await worker?.terminate();
  }

  private call(method: CounterMethod, args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the counter store is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      this.outbox.push({ id, now: this.clock.now(), method, args });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      // After the poll phase: the calls of every session served in this turn go together.
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0) return;
    const calls = this.outbox;
    this.outbox = [];
    const wait = this.worker ? 0 : this.restarts.waitMs();
    if (wait > 0) {
      // A worker that keeps dying at start: not started again for every call (it was logged when it died).
      this.fail(calls, new Error(`the counter worker thread keeps dying; it is started again in ${wait} ms`));
      return;
    }
    try {
      this.ensureWorker().postMessage(calls);
      this.watchdog?.watch();
    } catch (error: unknown) {
      // Calls that cannot cross (a worker that cannot start): each fails, and its session answers 451.
      this.logger.error('cannot hand calls to the counter worker thread', { error: errorMessage(error), calls: calls.length });
      this.fail(calls, new Error(`the counter worker thread cannot take the call: ${errorMessage(error)}`));
    }
  }

  private fail(calls: CounterCall[], failure: Error): void {
    for (const call of calls) {
      const entry = this.pending.get(call.id);
      this.pending.delete(call.id);
      entry?.reject(failure);
    }
    if (this.pending.size === 0) this.drained?.();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    /** The calls in hand, taken from `pending` to be failed. */
    const takeInHand = (): Pending[] => {
      const inHand = [...this.pending.values()];
      this.pending.clear();
      return inHand;
    };
    const { worker, watchdog } = superviseWorker<CounterAnswer[]>({
      start: () => new Worker(new URL('./counter-worker.mjs', import.meta.url), { workerData: { databasePath: this.databasePath } }),
      what: 'counter worker thread',
      logger: this.logger,
      restarts: this.restarts,
      watchdogMs: this.watchdogMs,
      isCurrent: (candidate) => this.worker === candidate,
      forget: () => {
        this.worker = undefined;
        this.watchdog = undefined;
      },
      hung: {
        message: 'no answer to the calls in hand; they failed, the thread is terminated, and the next call starts a new one',
        inHand: () => {
          const methods: Record<string, number> = {};
          for (const entry of this.pending.values()) methods[entry.method] = (methods[entry.method] ?? 0) + 1;
          return { calls: this.pending.size, methods };
        },
      },
      onHung: (failure) => {
        for (const entry of takeInHand()) entry.reject(failure);
        this.drained?.();
      },
      onAnswer: (answers, watchdog) => {
        for (const answer of answers) {
          const entry = this.pending.get(answer.id);
          if (!entry) continue;
          this.pending.delete(answer.id);
          if (answer.ok) entry.resolve(answer.value);
          else entry.reject(Object.assign(new Error(answer.message), answer.code ? { code: answer.code } : {}));
        }
        if (this.pending.size === 0) {
          watchdog.stop();
          this.drained?.();
        }
      },
      onExit: (code, cause) => {
        // Whatever was in hand may or may not have been committed: the callers answer 451.
        const inHand = takeInHand();
        const reason = cause === undefined ? '' : `: ${errorMessage(cause)}`;
        const failure = new Error(`the counter worker thread exited (code ${code}) before answering${reason}`);
        for (const entry of inHand) entry.reject(failure);
        this.drained?.();
        if (worker === this.ending) return;
        const restartInMs = this.restarts.died();
        this.logger.error('counter worker thread died; the calls in hand failed, and the next call starts it again', {
          code,
          ...(cause === undefined ? {} : { error: errorMessage(cause) }),
          calls: inHand.length,
          restartInMs,
        });
      },
    });
    this.worker = worker;
    this.watchdog = watchdog;
    return worker;
  }
}
