// The counters the relay's thread reads for every new session — an address's reputation at connect,
// the blocks after failed logins at AUTH (SESSION_START_KEY_PREFIXES) — kept in memory between
// changes. Each was a round trip to the counter thread and a SQLite read there: with a new
// connection for every message, about a tenth of the whole process's CPU per message, and a wait
// before every greeting.
//
// Exact, as the configuration's reads are (config-reads.ts): every change to these keys' buckets,
// by any connection (a refusal counted on this thread, a verdict in the pipeline thread, an unlock
// by the API or the CLI), moves `counter_generation` on (triggers, migration 13), and the kept
// buckets are dropped when it has moved; it is read at most once per turn of the event loop. What
// is kept is the list of buckets within the window as the store answered it; each read filters it
// at its own time, so a bucket that leaves its window stops counting at its time, with no change
// to the table. A write made through this store drops what is kept at once.
import { hasLeft, type CounterBucket, type CounterStore, type ReserveOutcome } from '../../core/counters.js';
import type { Maybe } from '../../core/maybe.js';
import type { Clock } from '../../core/ports.js';
import { hasKeyPrefix } from '../../core/policy/keys.js';
import type { ConfigReadCache } from './config-reads.js';

/**
 * Longest list of buckets kept for a key; a longer one is read from the store each time, as before.
 * What is kept then stays small whatever clients do (at most 10,000 keys of 100 buckets): an
 * address with more than 100 seconds of refusals in its window is refused anyway.
 */
export const MAX_KEPT_BUCKETS = 100;

interface Kept {
  /** The clock after the store answered: the list holds every bucket within the window at any later time. */
  readAt: number;
  /** Undefined when there were more than MAX_KEPT_BUCKETS: every read then asks the store. */
  buckets: readonly CounterBucket[] | undefined;
}

export class CachedCounterReads implements CounterStore {
  constructor(
    private readonly store: CounterStore,
    /** On counter_generation (migration 13). */
    private readonly cache: ConfigReadCache,
    /** The keys kept; the triggers of migration 13 must cover them. */
    private readonly prefixes: readonly string[],
    private readonly clock: Clock,
  ) {}

  async buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    if (!this.keeps(key)) return this.store.buckets(key, windowMs);
    const kept = await this.cache.read<Kept>(`${windowMs} ${key}`, async () => {
      const read = await this.store.buckets(key, windowMs);
      const buckets = read.length > MAX_KEPT_BUCKETS ? undefined : read.map((bucket) => Object.freeze({ at: bucket.at, units: bucket.units }));
      return { readAt: this.clock.now(), buckets };
    });
    const now = this.clock.now();
    // A clock set back since: buckets that left the window at `readAt` may count again.
    if (now < kept.readAt) return this.store.buckets(key, windowMs);
    // Too many to keep: the store has them.
    if (kept.buckets === undefined) return this.store.buckets(key, windowMs);
    return kept.buckets.filter((bucket) => !hasLeft(bucket.at, windowMs, now));
  }

  reserve(request: Parameters<CounterStore['reserve']>[0]): Maybe<ReserveOutcome> {
    // At every RCPT (the rate limits, never kept): no array built to ask.
    const kept = request.limits.some((limit) => this.keeps(limit.key)) || request.distinct?.some((limit) => this.keeps(limit.key)) === true;
    return kept ? this.cache.changing(async () => this.store.reserve(request)) : this.store.reserve(request);
  }

  settle(transaction: string, keep: string[]): Maybe<void> {
    return this.store.settle(transaction, keep);
  }

  add(key: string, units: number, windowMs: number): Promise<number> {
    return this.keeps(key) ? this.cache.changing(() => this.store.add(key, units, windowMs)) : this.store.add(key, units, windowMs);
  }

  total(key: string, windowMs: number): Promise<number> {
    return this.store.total(key, windowMs);
  }

  countDistinct(key: string, windowMs: number): Promise<number> {
    return this.store.countDistinct(key, windowMs);
  }

  reset(key: string): Promise<void> {
    return this.keeps(key) ? this.cache.changing(() => this.store.reset(key)) : this.store.reset(key);
  }

  purgeExpired(): Promise<number> {
    return this.cache.changing(() => this.store.purgeExpired());
  }

  private keeps(key: string): boolean {
    return hasKeyPrefix(key, this.prefixes);
  }
}
