// The CounterStore port: rate limits, distinct recipients and event counters, atomic under
// concurrency (SQLite IMMEDIATE transactions here; DynamoDB TransactWriteItems with conditions later).
//
// Window algorithm: a SLIDING WINDOW LOG. Every consumption is stored as one entry (key, time,
// units); the usage of a window is the sum of the entries younger than the window. We chose it over
// a fixed window with a carried-over weight because the issue demands that a limit is never
// exceeded, not even by one: the weighted fixed window is an estimate (it assumes the previous
// window's traffic was evenly spread) and can let through up to ~2x the limit at a window edge or
// refuse too early, and it cannot say exactly when a refused client may retry. The log is exact,
// gives an exact "retry after" (the moment enough old entries leave the window), and its cost is
// bounded by the limit itself (at most `limit` entries per key are alive; older ones are deleted
// on write). Limits here are small (mails per minute/hour, recipients per day), so the log stays
// small. Distinct recipients use the same log with a member column: the same address twice in
// the window counts once.
//
// Reservations: an entry may be held by a transaction (the SMTP session id) and an item (the
// recipient). Held entries count against limits at once, so concurrent sessions of one user can
// never exceed a limit; when the message is accepted the ingress settles the transaction, keeping
// the entries of the accepted recipients and deleting the others (RSET, QUIT, refused DATA).
// An entry whose session died without settling still counts until it leaves its window: the
// store errs on the side of refusing, never of exceeding.

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
  /** Earliest time the attempt would fit (ms since epoch). */
  retryAt: number;
}

export type ReserveOutcome = { ok: true } | { ok: false; refused: Refusal };

export interface CounterEntry {
  at: number;
  units: number;
}

export interface CounterStore {
  /**
   * All-or-nothing: consumes every window limit and reserves every distinct member, or, if any of
   * them would exceed its limit, changes nothing and names the first one refused.
   */
  reserve(request: { limits: WindowLimit[]; distinct?: DistinctLimit[]; hold?: Hold }): Promise<ReserveOutcome>;
  /** Keeps the held entries of `transaction` whose item is in `keep` (they become permanent) and deletes the rest. */
  settle(transaction: string, keep: string[]): Promise<void>;
  /** Unconditionally adds `units` (an event counter: invalid recipients, auth failures); returns the total within the window. */
  add(key: string, units: number, windowMs: number): Promise<number>;
  /** Sum of units within the last `windowMs`. */
  total(key: string, windowMs: number): Promise<number>;
  /** The entries within the last `windowMs`, oldest first (for decaying scores). */
  entries(key: string, windowMs: number): Promise<CounterEntry[]>;
  /** Distinct members within the last `windowMs`. */
  countDistinct(key: string, windowMs: number): Promise<number>;
  /** Forgets every entry of `key` (a manual unlock resets the counters that caused the lock). */
  reset(key: string): Promise<void>;
  /** Deletes entries older than their window; returns how many. Writes also clean their own key. */
  purgeExpired(): Promise<number>;
}

/** When `windowLimit` would admit `units` again, given the entries within the window (oldest first). */
export function retryTime(entries: CounterEntry[], limit: number, units: number, windowMs: number, now: number): number {
  let used = entries.reduce((sum, entry) => sum + entry.units, 0);
  if (used + units <= limit) return now;
  for (const entry of entries) {
    used -= entry.units;
    if (used + units <= limit) return entry.at + windowMs;
  }
  // The attempt alone is larger than the limit: it never fits; say "a full window from now".
  return now + windowMs;
}
