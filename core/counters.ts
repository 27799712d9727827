// The CounterStore port: rate limits, distinct recipients and event counters, atomic under
// concurrency (SQLite IMMEDIATE transactions; DynamoDB TransactWriteItems with conditions).
//
// Window algorithm: PER-SECOND BUCKETS WITH A RUNNING SUM, the sliding window at one-second
// resolution. Every use is added to the bucket of its second; a key's head keeps the sum of its
// live buckets, and a bucket that leaves the window is subtracted and deleted by the next write
// (or by housekeeping). The usage of a window is therefore read in constant time, whatever the
// number of messages in it: a busy sender pays the same per RCPT with 10 or 100,000 mails in its
// hour. We chose it over a fixed window with a carried-over weight because a limit must never be
// exceeded, not even by one: the weighted fixed window is an estimate (it assumes the previous
// window's traffic was evenly spread), can let through up to ~2x the limit at a window edge and
// cannot say exactly when a refused client may retry. The former sliding window log was exact
// but read the whole window on every RCPT.
//
// Resolution: a use at time t goes into the bucket of the next whole second, ceil(t / 1 s), and
// leaves the window at that second plus the window. It therefore counts at least as long as it
// would to the millisecond (never shorter: the limit holds over every window of exactly windowMs)
// and at most 999 ms longer; a use on a whole second leaves exactly one window later. Retry times
// are whole seconds, and exact: the attempt fits at `retryAt`, not a millisecond before.
//
// Distinct recipients keep one row per member (bounded by the limit) holding its last sighting,
// and the same running count in the head: the same address twice in the window counts once.
//
// Reservations: a use may be held by a transaction (the SMTP session id) and an item (the
// recipient). Held uses count against limits at once, so concurrent sessions of one user can
// never exceed a limit; when the message is accepted the ingress settles the transaction, keeping
// the uses of the accepted recipients and giving back the others (RSET, QUIT, refused DATA): the
// held units leave their bucket, a held sighting leaves its member (which then counts from its
// latest remaining sighting, or not at all). A use whose session died without settling still
// counts until it leaves its window: the store errs on the side of refusing, never of exceeding.

import type { Maybe } from './maybe.js';

/** "At most `limit` units within the last `windowMs`". */
export interface WindowLimit {
  key: string;
  units: number;
  limit: number;
  windowMs: number;
}

/** "At most `limit` distinct members within the last `windowMs`". */
export interface DistinctLimit {
  key: string;
  /** Already normalised by the caller (e.g. recipient with its domain lower-cased). */
  members: string[];
  limit: number;
  windowMs: number;
}

/** Who holds a reservation: the transaction (session id) and the item (recipient) it is for. */
export interface Hold {
  transaction: string;
  item: string;
}

export interface Refusal {
  key: string;
  limit: number;
  /** Usage within the window before this attempt. */
  used: number;
  /** Earliest time the attempt would fit (ms since epoch, a whole second). */
  retryAt: number;
}

export type ReserveOutcome = { ok: true } | { ok: false; refused: Refusal };

/** The units counted in one second of a window. */
export interface CounterBucket {
  /** The whole second (ms since epoch) its uses count from: each use rounded up to it. */
  at: number;
  units: number;
}

export interface CounterStore {
  /**
   * All-or-nothing: consumes every window limit and reserves every distinct member, or, if any of
   * them would exceed its limit, changes nothing and names the first one refused. A Maybe
   * (core/maybe.ts): a store that holds the counters in memory answers at once; a failure is a
   * rejected promise.
   */
  reserve(request: { limits: WindowLimit[]; distinct?: DistinctLimit[]; hold?: Hold }): Maybe<ReserveOutcome>;
  /** Keeps the held uses of `transaction` whose item is in `keep` (they become permanent) and gives back the rest. A Maybe, as reserve. */
  settle(transaction: string, keep: string[]): Maybe<void>;
  /** Unconditionally adds `units` (an event counter: invalid recipients, auth failures); returns the total within the window. */
  add(key: string, units: number, windowMs: number): Promise<number>;
  /** Sum of units within the last `windowMs` (read from the running sum, not the buckets). */
  total(key: string, windowMs: number): Promise<number>;
  /**
   * The live buckets within the last `windowMs`, oldest first: one per second that has units, so
   * their number is bounded by the window's seconds, not by its events (decaying scores, retry times).
   */
  buckets(key: string, windowMs: number): Promise<CounterBucket[]>;
  /** Distinct members within the last `windowMs`. */
  countDistinct(key: string, windowMs: number): Promise<number>;
  /** Forgets every use of `key` (a manual unlock resets the counters that caused the lock). */
  reset(key: string): Promise<void>;
  /** Deletes buckets and members that left their window; returns how many. Writes also clean their own key. */
  purgeExpired(): Promise<number>;
}

const SECOND_MS = 1000;

/** The bucket a use at `now` counts in: the next whole second (a use on a whole second stays in it). */
export function bucketOf(now: number): number {
  return Math.ceil(now / SECOND_MS) * SECOND_MS;
}

/** Whether a bucket (or sighting) made at `at` has left a window of `windowMs` at `now`. */
export function hasLeft(at: number, windowMs: number, now: number): boolean {
  return at + windowMs <= now;
}

/**
 * When `units` more fit under `limit` again, given the usage `used` and the live buckets oldest
 * first (read lazily: it stops at the first bucket whose leaving is enough).
 */
export function retryTime(buckets: Iterable<CounterBucket>, used: number, limit: number, units: number, windowMs: number, now: number): number {
  if (used + units <= limit) return now;
  let left = used;
  for (const bucket of buckets) {
    left -= bucket.units;
    if (left + units <= limit) return bucket.at + windowMs;
  }
  // The attempt alone is larger than the limit: it never fits; say "a full window from now".
  return bucketOf(now) + windowMs;
}
