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
import { andThen, type Maybe } from '../../core/maybe.js';
import type { Logger } from '../../core/ports.js';
import { hasKeyPrefix } from '../../core/policy/keys.js';
import type { ThreadedCounterStore } from './counter-thread.js';
import type { CounterRows, MemoryCounterStore } from './memory-counter-store.js';

type ReserveRequest = Parameters<CounterStore['reserve']>[0];

/** The SQLite side: the port, and the two calls that persist and restore the in-memory keys. */
export type SharedCounters = CounterStore & Pick<ThreadedCounterStore, 'applyChanges' | 'rowsWithPrefixes'>;

export class RelayCounterStore implements CounterStore {
  private timer: NodeJS.Timeout | undefined;
  /** Transactions holding uses of shared keys: their settle goes to the shared store too. */
  private readonly sharedHolds = new Set<string>();
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly memory: MemoryCounterStore,
    private readonly shared: SharedCounters,
    private readonly prefixes: string[],
    private readonly logger: Logger,
    private readonly flushMs = 1000,
  ) {}

  /** Reads the in-memory keys back from the counter tables, then writes their changes every `flushMs`. */
  async start(): Promise<void> {
    this.memory.load(await this.shared.rowsWithPrefixes(this.prefixes));
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Writes what changed since the last write, and stops writing. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  reserve(request: ReserveRequest): Maybe<ReserveOutcome> {
    // Asked at every RCPT: counted without building a list of the keys.
    let inMemory = 0;
    for (const limit of request.limits) if (this.inMemory(limit.key)) inMemory += 1;
    for (const limit of request.distinct ?? []) if (this.inMemory(limit.key)) inMemory += 1;
    if (inMemory > 0 && inMemory === request.limits.length + (request.distinct?.length ?? 0)) return this.memory.reserve(request);
    if (inMemory > 0) {
      const keys = [...request.limits, ...(request.distinct ?? [])].map((limit) => limit.key);
      // One reservation is one atomic step: it cannot span the two stores.
      return Promise.reject(new Error(`a reservation mixes rate-limit keys with shared ones: ${keys.join(', ')}`));
    }
    if (request.hold) this.sharedHolds.add(request.hold.transaction);
    return this.shared.reserve(request);
  }

  /** At once when the transaction held rate-limit keys only, as every RCPT's reservation does (core/maybe.ts). */
  settle(transaction: string, keep: string[]): Maybe<void> {
    return andThen(this.memory.settle(transaction, keep), () => (this.sharedHolds.delete(transaction) ? this.shared.settle(transaction, keep) : undefined));
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
    return (await this.memory.purgeExpired()) + (await this.shared.purgeExpired());
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
        await this.shared.applyChanges(changes);
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

  private inMemory(key: string): boolean {
    return hasKeyPrefix(key, this.prefixes);
  }

  private storeOf(key: string): CounterStore {
    return this.inMemory(key) ? this.memory : this.shared;
  }
}

function isEmpty(changes: CounterRows): boolean {
  return changes.heads.length === 0 && changes.buckets.length === 0 && changes.members.length === 0 && changes.wiped.length === 0;
}
