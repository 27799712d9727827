// The counters of the single node's relay thread: the rate limits at RCPT in memory, every other
// key in SQLite through the counter thread.
//
// The rate limits (RATE_LIMIT_KEY_PREFIXES: mails per minute and per hour, distinct recipients per
// day) are reserved at every RCPT and settled after every message, and only there: nothing else
// reads or resets them. Held by the relay's thread in a MemoryCounterStore, their reservation is a
// few Map operations on the thread that asks, instead of a dozen SQLite statements on the counter
// thread and a round trip to it (a third of the whole process's CPU per message, measured with the
// counters left out). Exact as before: the relay's thread is their only user, its calls run one at
// a time, and one relay holds a data folder (data-folder-lock.ts).
//
// They are soft state, as the issue that asked for counters without an fsync each says: the rows
// they changed are written to the counter tables once a second (`flushMs`) and when the relay
// stops, and read back when it starts. A relay that dies forgets at most the last second of its
// rate-limit uses (SIGKILL, power loss), never a queued message. A write that fails is logged and
// tried again with the next one.
//
// Every other key (invalid recipients, spam verdicts, limit violations, failed logins, IP
// reputation, the bounce listener's limits) is shared with the pipeline thread, the API and the
// CLI (a manual unlock resets them), and stays in SQLite, through the counter thread.
import type { CounterBucket, CounterStore, ReserveOutcome } from '../../core/counters.js';
import { errorMessage } from '../../core/log.js';
import type { Logger } from '../../core/ports.js';
import type { ThreadedCounterStore } from './counter-thread.js';
import type { CounterRows, MemoryCounterStore } from './memory-counter-store.js';

type ReserveRequest = Parameters<CounterStore['reserve']>[0];

/** The SQLite side: the port, and the two calls that persist and restore the in-memory keys. */
export type SharedCounters = CounterStore & Pick<ThreadedCounterStore, 'applyChanges' | 'rowsWithPrefixes'>;

/**
 * Every call to the store its keys belong to: keys that start with one of `prefixes` to `held`,
 * the others to `shared`. A reservation cannot span the two (it is one atomic step of one store).
 */
export class KeyRoutedCounterStore implements CounterStore {
  /** Transactions holding uses of shared keys: their settle goes to the shared store too. */
  private readonly sharedHolds = new Set<string>();

  constructor(
    protected readonly held: CounterStore,
    protected readonly shared: CounterStore,
    protected readonly prefixes: string[],
  ) {}

  reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    const keys = [...request.limits.map((limit) => limit.key), ...(request.distinct ?? []).map((limit) => limit.key)];
    const held = keys.filter((key) => this.isHeld(key)).length;
    if (held > 0 && held === keys.length) return this.held.reserve(request);
    if (held > 0) return Promise.reject(new Error(`a reservation mixes keys the relay holds with shared ones: ${keys.join(', ')}`));
    if (request.hold) this.sharedHolds.add(request.hold.transaction);
    return this.shared.reserve(request);
  }

  async settle(transaction: string, keep: string[]): Promise<void> {
    await this.held.settle(transaction, keep);
    if (this.sharedHolds.delete(transaction)) await this.shared.settle(transaction, keep);
  }

  add(key: string, units: number, windowMs: number): Promise<number> {
    return this.storeOf(key).add(key, units, windowMs);
  }

  total(key: string, windowMs: number): Promise<number> {
    return this.storeOf(key).total(key, windowMs);
  }

  buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    return this.storeOf(key).buckets(key, windowMs);
  }

  countDistinct(key: string, windowMs: number): Promise<number> {
    return this.storeOf(key).countDistinct(key, windowMs);
  }

  reset(key: string): Promise<void> {
    return this.storeOf(key).reset(key);
  }

  async purgeExpired(): Promise<number> {
    return (await this.held.purgeExpired()) + (await this.shared.purgeExpired());
  }

  private isHeld(key: string): boolean {
    return this.prefixes.some((prefix) => key.startsWith(prefix));
  }

  private storeOf(key: string): CounterStore {
    return this.isHeld(key) ? this.held : this.shared;
  }
}

/** The relay thread's counters: its keys in a MemoryCounterStore, written to SQLite once a second and read back at start. */
export class RelayCounterStore extends KeyRoutedCounterStore {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly memory: MemoryCounterStore,
    private readonly tables: SharedCounters,
    prefixes: string[],
    private readonly logger: Logger,
    private readonly flushMs = 1000,
  ) {
    super(memory, tables, prefixes);
  }

  /** Reads the in-memory keys back from the counter tables, then writes their changes every `flushMs`. */
  async start(): Promise<void> {
    this.memory.load(await this.tables.rowsWithPrefixes(this.prefixes));
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Writes what changed since the last write, and stops writing. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /**
   * Writes the rows changed since the last write (after dropping what left its window, so that
   * memory holds live keys only). One write at a time, in order; one that fails is logged and its
   * rows are written again, as they are then, by the next.
   */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      await this.memory.purgeExpired();
      const changes = this.memory.takeChanges();
      if (isEmpty(changes)) return;
      try {
        await this.tables.applyChanges(changes);
      } catch (error: unknown) {
        this.memory.restoreChanges(changes);
        this.logger.error('cannot write the rate-limit counters to the database; they are kept in memory and written again in a second', {
          error: errorMessage(error),
          keys: new Set(changes.heads.map(([key]) => key)).size,
        });
      }
    });
    return this.writing;
  }
}

/** The CounterStore methods a worker thread may call on the relay thread's counters. */
export const COUNTER_METHODS = ['reserve', 'settle', 'add', 'total', 'buckets', 'countDistinct', 'reset', 'purgeExpired'] as const;
export type CounterMethodName = (typeof COUNTER_METHODS)[number];

/**
 * The relay thread's counters as another thread of the node sees them (the pipeline's, for the IP
 * reputation its abuse verdicts add to): each call crosses to the relay's thread, which answers it
 * (`ask`, bin/pipeline-thread.ts).
 */
export class RelayThreadCounters implements CounterStore {
  constructor(private readonly ask: (method: CounterMethodName, args: unknown[]) => Promise<unknown>) {}

  reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    return this.ask('reserve', [request]) as Promise<ReserveOutcome>;
  }

  async settle(transaction: string, keep: string[]): Promise<void> {
    await this.ask('settle', [transaction, keep]);
  }

  add(key: string, units: number, windowMs: number): Promise<number> {
    return this.ask('add', [key, units, windowMs]) as Promise<number>;
  }

  total(key: string, windowMs: number): Promise<number> {
    return this.ask('total', [key, windowMs]) as Promise<number>;
  }

  buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    return this.ask('buckets', [key, windowMs]) as Promise<CounterBucket[]>;
  }

  countDistinct(key: string, windowMs: number): Promise<number> {
    return this.ask('countDistinct', [key, windowMs]) as Promise<number>;
  }

  async reset(key: string): Promise<void> {
    await this.ask('reset', [key]);
  }

  purgeExpired(): Promise<number> {
    return this.ask('purgeExpired', []) as Promise<number>;
  }
}

function isEmpty(changes: CounterRows): boolean {
  return changes.heads.length === 0 && changes.buckets.length === 0 && changes.members.length === 0 && changes.wiped.length === 0;
}
