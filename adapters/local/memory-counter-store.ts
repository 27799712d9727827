// The rate-limit counters the single node's relay thread holds in memory (relay-counters.ts):
// the same algorithm as SqliteCounterStore (per-second buckets with a running sum, distinct
// members with their latest sighting, held uses settled or given back; see core/counters.ts),
// on Maps instead of tables. Its methods do all their work before they return, on the caller's
// thread, so each call is atomic and the limits exact for every caller of that thread; the
// SQLite statements of one RCPT's reservation and one message's settle (about a dozen, 0.1–0.2 ms
// of CPU a message on the counter thread, and a round trip to it) become a few Map operations.
//
// What it changed is kept as a set of dirty rows (takeChanges): the relay writes them to the
// counter tables once a second (SqliteCounterStore.applyChanges), so a restart finds the windows
// where they were (load), less at most the last second; held uses are not written (a hold lives
// as long as its SMTP transaction), their units are, within their buckets.
//
// Order: a key's buckets and members are kept in Maps whose insertion order is their time order
// while uses arrive in time order (one clock, moving forward): what left a window is then found
// at the front. A use older than the newest (a clock set back, a sighting given back) marks the
// key unordered, and its expiry reads every row, as the SQL store's index would.
import {
  bucketOf,
  hasLeft,
  retryTime,
  type CounterBucket,
  type CounterStore,
  type DistinctLimit,
  type Hold,
  type Refusal,
  type ReserveOutcome,
  type WindowLimit,
} from '../../core/counters.js';
import { attempt, type Maybe } from '../../core/maybe.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { COUNTER_MEMORY_FULL } from '../../core/storage-full.js';

/** A key's head, as in the counter_heads table. */
export interface CounterHead {
  windowMs: number;
  total: number;
  liveUntil: number;
  oldest: number;
}

/** A distinct member's latest sighting, and its latest settled one. */
export interface CounterMember {
  seen: number;
  committed: number | null;
}

/** The rows of some keys, as they are (load) or as they changed (takeChanges: `null` is a deleted row). */
export interface CounterRows {
  heads: Array<[key: string, head: CounterHead | null]>;
  buckets: Array<[key: string, at: number, units: number | null]>;
  members: Array<[key: string, member: string, row: CounterMember | null]>;
  /** Keys whose every bucket and member was deleted before the rows above (a reset, a window that all left). */
  wiped: string[];
}

interface KeyState {
  head: CounterHead;
  buckets: Map<number, number>;
  members: Map<string, CounterMember>;
  /** Whether the Maps' order is their time order (see above), and the newest time in each. */
  bucketsInOrder: boolean;
  newestBucket: number;
  membersInOrder: boolean;
  newestSeen: number;
}

interface HeldUse {
  item: string;
  key: string;
  /** '' for held window units. */
  member: string;
  sighting: boolean;
  at: number;
  units: number;
  leavesAt: number;
}

type ReserveRequest = Parameters<CounterStore['reserve']>[0];

const SEP = '\u0000';

export class MemoryCounterStore implements CounterStore {
  private readonly keys = new Map<string, KeyState>();
  /** Held uses by transaction, then by item, key, member and second (the SQL store's primary key). */
  private readonly holds = new Map<string, Map<string, HeldUse>>();
  /** The seconds of the held sightings of each key and member, with how many holds have each. */
  private readonly heldSightings = new Map<string, Map<number, number>>();
  // What changed since takeChanges(), by key.
  private readonly dirtyHeads = new Set<string>();
  private readonly dirtyBuckets = new Map<string, Set<number>>();
  private readonly dirtyMembers = new Map<string, Set<string>>();
  private readonly wiped = new Set<string>();
  /** Distinct members held, over every key (see MemberBudget). */
  private heldMembers = 0;

  constructor(
    private readonly clock: Clock = systemClock,
    private readonly budget: MemberBudget = DEFAULT_MEMBER_BUDGET,
  ) {}

  /** Distinct members held now, over every key. */
  get members(): number {
    return this.heldMembers;
  }

  /** At once (core/maybe.ts): the relay asks it at every RCPT. A throw (the member budget) is a rejected promise. */
  reserve(request: ReserveRequest): Maybe<ReserveOutcome> {
    return attempt(() => this.reserveNow(request, this.clock.now()));
  }

  settle(transaction: string, keep: string[]): Maybe<void> {
    return attempt(() => this.settleNow(transaction, keep, this.clock.now()));
  }

  async add(key: string, units: number, windowMs: number): Promise<number> {
    const now = this.clock.now();
    const used = this.usage(key, windowMs, now);
    const at = bucketOf(now);
    this.addToBucket(this.moveHead(key, units, windowMs, at), key, at, units);
    return used + units;
  }

  async total(key: string, windowMs: number): Promise<number> {
    const state = this.keys.get(key);
    if (state === undefined) return 0;
    const now = this.clock.now();
    if (state.head.windowMs !== windowMs) return sumUnits(state.buckets, (at) => at > now - windowMs);
    if (!hasLeft(state.head.oldest, windowMs, now)) return state.head.total;
    return state.head.total - sumUnits(state.buckets, (at) => at <= now - windowMs);
  }

  async buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    const state = this.keys.get(key);
    if (state === undefined) return [];
    const since = this.clock.now() - windowMs;
    return [...this.bucketsInOrder(state)].filter((bucket) => bucket.at > since);
  }

  async countDistinct(key: string, windowMs: number): Promise<number> {
    const state = this.keys.get(key);
    if (state === undefined) return 0;
    const now = this.clock.now();
    if (state.head.windowMs === windowMs && !hasLeft(state.head.oldest, windowMs, now)) return state.head.total;
    let left = 0;
    for (const row of state.members.values()) if (row.seen <= now - windowMs) left += 1;
    return state.head.windowMs === windowMs ? state.head.total - left : state.members.size - left;
  }

  async reset(key: string): Promise<void> {
    this.heldMembers -= this.keys.get(key)?.members.size ?? 0;
    if (this.keys.delete(key)) {
      this.wipe(key);
      this.dirtyHeads.add(key);
    }
    for (const [transaction, held] of this.holds) {
      for (const [id, use] of held) if (use.key === key) this.dropHold(held, id, use);
      if (held.size === 0) this.holds.delete(transaction);
    }
  }

  async purgeExpired(): Promise<number> {
    const now = this.clock.now();
    let deleted = 0;
    for (const [key, state] of this.keys) {
      restoreOrder(state);
      if (hasLeft(state.head.oldest, state.head.windowMs, now)) deleted += this.subtractLeft(key, state, state.head.windowMs, now).rows;
      if (state.head.liveUntil <= now) {
        // Every use has left: the head (total 0 now) goes as well.
        this.heldMembers -= state.members.size;
        this.keys.delete(key);
        this.dirtyHeads.add(key);
      }
    }
    for (const [transaction, held] of this.holds) {
      for (const [id, use] of held) if (use.leavesAt <= now) this.dropHold(held, id, use);
      if (held.size === 0) this.holds.delete(transaction);
    }
    return deleted;
  }

  /** Starts from rows read back from the counter tables (a restart): buckets and members in any order. */
  load(rows: CounterRows): void {
    for (const [key, head] of rows.heads) if (head) this.keys.set(key, emptyState({ ...head }));
    const buckets = rows.buckets.filter((row): row is [string, number, number] => row[2] !== null).sort((a, b) => a[1] - b[1]);
    for (const [key, at, units] of buckets) {
      const state = this.keys.get(key);
      if (state) this.putBucket(state, at, units);
    }
    const members = rows.members.filter((row): row is [string, string, CounterMember] => row[2] !== null).sort((a, b) => a[2].seen - b[2].seen);
    for (const [key, member, row] of members) {
      const state = this.keys.get(key);
      if (state) {
        this.putMember(state, member, { ...row });
        this.heldMembers += 1;
      }
    }
  }

  /** The rows changed since the last call, as they are now; forgets them (see restoreChanges). */
  takeChanges(): CounterRows {
    const changes: CounterRows = { heads: [], buckets: [], members: [], wiped: [...this.wiped] };
    for (const key of this.dirtyHeads) {
      const head = this.keys.get(key)?.head;
      changes.heads.push([key, head ? { ...head } : null]);
    }
    for (const [key, ats] of this.dirtyBuckets) {
      const buckets = this.keys.get(key)?.buckets;
      for (const at of ats) changes.buckets.push([key, at, buckets?.get(at) ?? null]);
    }
    for (const [key, names] of this.dirtyMembers) {
      const members = this.keys.get(key)?.members;
      for (const member of names) {
        const row = members?.get(member);
        changes.members.push([key, member, row ? { ...row } : null]);
      }
    }
    this.dirtyHeads.clear();
    this.dirtyBuckets.clear();
    this.dirtyMembers.clear();
    this.wiped.clear();
    return changes;
  }

  /** Marks the rows of changes that could not be written as changed again: the next takeChanges() gives them as they are then. */
  restoreChanges(changes: CounterRows): void {
    for (const key of changes.wiped) this.wiped.add(key);
    for (const [key] of changes.heads) this.dirtyHeads.add(key);
    for (const [key, at] of changes.buckets) this.markBucket(key, at);
    for (const [key, member] of changes.members) this.markMember(key, member);
  }

  private reserveNow(request: ReserveRequest, now: number): ReserveOutcome {
    const distinct = (request.distinct ?? []).map((limit) => ({ ...limit, members: [...new Set(limit.members)] }));
    for (const limit of request.limits) {
      const used = this.usage(limit.key, limit.windowMs, now);
      if (used + limit.units > limit.limit) {
        const state = this.keys.get(limit.key);
        const retryAt = retryTime(state ? this.bucketsInOrder(state) : [], used, limit.limit, limit.units, limit.windowMs, now);
        return { ok: false, refused: refusal(limit.key, limit.limit, used, retryAt) };
      }
    }
    const newcomers: number[] = [];
    for (const limit of distinct) {
      const used = this.usage(limit.key, limit.windowMs, now);
      // Every member left is live: usage() deleted those that left the window.
      const members = this.keys.get(limit.key)?.members;
      const fresh = limit.members.filter((member) => !members?.has(member)).length;
      if (used + fresh > limit.limit) return { ok: false, refused: refusal(limit.key, limit.limit, used, this.distinctRetry(limit, used, fresh, now)) };
      this.checkMemberBudget(limit.key, members?.size ?? 0, fresh);
      newcomers.push(fresh);
    }
    this.write(request.limits, distinct, newcomers, bucketOf(now), request.hold);
    return { ok: true };
  }

  /**
   * Throws MemberBudgetExceeded when `fresh` new members of `key` (which holds `held`) would take
   * the store over its budget: first only for the keys that hold a large share of it (the senders
   * that filled it, charged for it), then, past the hard limit, for every key.
   */
  private checkMemberBudget(key: string, held: number, fresh: number): void {
    if (fresh === 0 || this.heldMembers + fresh <= this.budget.members) return;
    const hard = this.heldMembers + fresh > this.budget.members * HARD_LIMIT_FACTOR;
    if (hard || held >= this.budget.members * LARGE_SHARE) throw new MemberBudgetExceeded(key, held, this.heldMembers, this.budget.members);
  }

  private write(limits: WindowLimit[], distinct: DistinctLimit[], newcomers: number[], at: number, hold: Hold | undefined): void {
    for (const limit of limits) this.addToBucket(this.moveHead(limit.key, limit.units, limit.windowMs, at), limit.key, at, limit.units);
    distinct.forEach((limit, i) => {
      const state = this.moveHead(limit.key, newcomers[i] ?? 0, limit.windowMs, at);
      for (const member of limit.members) {
        const row = state.members.get(member);
        // A held sighting is not settled yet: it keeps the member's former `committed`.
        const committed = hold ? (row?.committed ?? null) : at;
        if (row === undefined) {
          this.putMember(state, member, { seen: at, committed });
          this.heldMembers += 1;
        }
        else if (at > row.seen) {
          state.members.delete(member);
          this.putMember(state, member, { seen: at, committed });
        } else row.committed = committed;
        this.markMember(limit.key, member);
      }
    });
    if (hold === undefined) return;
    for (const limit of limits) this.hold(hold, { item: hold.item, key: limit.key, member: '', sighting: false, at, units: limit.units, leavesAt: at + limit.windowMs });
    for (const limit of distinct) {
      for (const member of limit.members) this.hold(hold, { item: hold.item, key: limit.key, member, sighting: true, at, units: 1, leavesAt: at + limit.windowMs });
    }
  }

  private hold(hold: Hold, use: HeldUse): void {
    let held = this.holds.get(hold.transaction);
    if (held === undefined) {
      held = new Map();
      this.holds.set(hold.transaction, held);
    }
    const id = use.item + SEP + use.key + SEP + use.member + SEP + String(use.at);
    const same = held.get(id);
    if (same) {
      same.units += use.units;
      return;
    }
    held.set(id, use);
    if (use.sighting) {
      const sightingKey = use.key + SEP + use.member;
      let seconds = this.heldSightings.get(sightingKey);
      if (seconds === undefined) {
        seconds = new Map();
        this.heldSightings.set(sightingKey, seconds);
      }
      seconds.set(use.at, (seconds.get(use.at) ?? 0) + 1);
    }
  }

  private dropHold(held: Map<string, HeldUse>, id: string, use: HeldUse): void {
    held.delete(id);
    if (!use.sighting) return;
    const sightingKey = use.key + SEP + use.member;
    const seconds = this.heldSightings.get(sightingKey);
    if (seconds === undefined) return;
    const count = (seconds.get(use.at) ?? 0) - 1;
    if (count > 0) seconds.set(use.at, count);
    else seconds.delete(use.at);
    if (seconds.size === 0) this.heldSightings.delete(sightingKey);
  }

  private settleNow(transaction: string, keep: string[], now: number): void {
    const held = this.holds.get(transaction);
    if (held === undefined) return;
    this.holds.delete(transaction);
    const kept = new Set(keep);
    // Kept sightings first: a sighting given back below then counts from a kept one if later.
    for (const use of held.values()) {
      if (!use.sighting || !kept.has(use.item)) continue;
      const row = this.keys.get(use.key)?.members.get(use.member);
      if (row) {
        row.committed = Math.max(row.committed ?? 0, use.at);
        this.markMember(use.key, use.member);
      }
    }
    // Every hold of the transaction goes before any is given back: a sighting given back counts
    // from the holds of other transactions only.
    const givenBack: HeldUse[] = [];
    for (const [id, use] of held) {
      this.dropHold(held, id, use);
      if (!kept.has(use.item)) givenBack.push(use);
    }
    for (const use of givenBack) {
      if (use.sighting) this.releaseSighting(use.key, use.member, now);
      else this.releaseUnits(use);
    }
  }

  /** Gives back held units: out of their bucket and the running sum, unless the bucket is gone (left, reset). */
  private releaseUnits(use: HeldUse): void {
    const state = this.keys.get(use.key);
    const units = state?.buckets.get(use.at);
    if (state === undefined || units === undefined) return;
    if (units - use.units <= 0) state.buckets.delete(use.at);
    else state.buckets.set(use.at, units - use.units);
    this.markBucket(use.key, use.at);
    state.head.total -= use.units;
    this.dirtyHeads.add(use.key);
  }

  /** Gives back a held sighting: the member counts from its latest remaining sighting, or leaves. */
  private releaseSighting(key: string, member: string, now: number): void {
    const state = this.keys.get(key);
    const row = state?.members.get(member);
    if (state === undefined || row === undefined) return;
    let latest = row.committed ?? -Infinity;
    for (const at of this.heldSightings.get(key + SEP + member)?.keys() ?? []) latest = Math.max(latest, at);
    if (latest === -Infinity || hasLeft(latest, state.head.windowMs, now)) {
      state.members.delete(member);
      this.heldMembers -= 1;
      state.head.total -= 1;
    } else if (latest !== row.seen) {
      // The sighting moves back in time: the members are no longer in time order, and the head's oldest use may now be this one.
      row.seen = latest;
      state.membersInOrder = false;
      state.head.oldest = Math.min(state.head.oldest, latest);
    } else return;
    this.markMember(key, member);
    this.dirtyHeads.add(key);
  }

  /** The key's usage at `now`, after subtracting (and deleting) what left its window. */
  private usage(key: string, windowMs: number, now: number): number {
    const state = this.keys.get(key);
    if (state === undefined) return 0;
    const head = state.head;
    if (head.windowMs !== windowMs) return this.rebuild(key, state, windowMs, now);
    if (head.liveUntil <= now) {
      // Nothing of the key is live: start it afresh rather than subtract bucket by bucket.
      state.buckets.clear();
      this.heldMembers -= state.members.size;
      state.members.clear();
      state.bucketsInOrder = state.membersInOrder = true;
      state.newestBucket = state.newestSeen = -Infinity;
      this.wipe(key);
      head.total = 0;
      head.oldest = now;
      this.dirtyHeads.add(key);
      return 0;
    }
    // The oldest use is still in the window: nothing has left it, the running sum is the usage.
    if (!hasLeft(head.oldest, windowMs, now)) return head.total;
    return head.total - this.subtractLeft(key, state, windowMs, now).units;
  }

  /** Subtracts and deletes the buckets and members of `key` that left its window; the head keeps its oldest remaining use. */
  private subtractLeft(key: string, state: KeyState, windowMs: number, now: number): { rows: number; units: number } {
    const cutoff = now - windowMs;
    let rows = 0;
    let units = 0;
    for (const [at, bucketUnits] of state.buckets) {
      if (at > cutoff) {
        if (state.bucketsInOrder) break;
        continue;
      }
      state.buckets.delete(at);
      this.markBucket(key, at);
      rows += 1;
      units += bucketUnits;
    }
    for (const [member, row] of state.members) {
      if (row.seen > cutoff) {
        if (state.membersInOrder) break;
        continue;
      }
      state.members.delete(member);
      this.heldMembers -= 1;
      this.markMember(key, member);
      rows += 1;
      units += 1;
    }
    state.head.total -= units;
    state.head.oldest = this.oldestUse(state, now);
    this.dirtyHeads.add(key);
    return { rows, units };
  }

  /** The key is used with another window than its head was kept for: count it again from its rows. */
  private rebuild(key: string, state: KeyState, windowMs: number, now: number): number {
    state.head.windowMs = windowMs;
    this.subtractLeft(key, state, windowMs, now);
    state.head.total = sumUnits(state.buckets, () => true) + state.members.size;
    return state.head.total;
  }

  /** The time of the key's oldest bucket or member; `now` when it has none. */
  private oldestUse(state: KeyState, now: number): number {
    let oldest = now;
    for (const at of state.buckets.keys()) {
      oldest = Math.min(oldest, at);
      if (state.bucketsInOrder) break;
    }
    for (const row of state.members.values()) {
      oldest = Math.min(oldest, row.seen);
      if (state.membersInOrder) break;
    }
    return oldest;
  }

  /** Adds `delta` to the key's running sum (creating its head); returns its state. */
  private moveHead(key: string, delta: number, windowMs: number, at: number): KeyState {
    let state = this.keys.get(key);
    if (state === undefined) {
      state = emptyState({ windowMs, total: delta, liveUntil: at + windowMs, oldest: at });
      this.keys.set(key, state);
    } else {
      const head = state.head;
      head.total += delta;
      head.liveUntil = Math.max(head.liveUntil, at + windowMs);
      head.oldest = Math.min(head.oldest, at);
    }
    this.dirtyHeads.add(key);
    return state;
  }

  private addToBucket(state: KeyState, key: string, at: number, units: number): void {
    const current = state.buckets.get(at);
    if (current === undefined) this.putBucket(state, at, units);
    else state.buckets.set(at, current + units);
    this.markBucket(key, at);
  }

  private putBucket(state: KeyState, at: number, units: number): void {
    if (at < state.newestBucket) state.bucketsInOrder = false;
    state.newestBucket = Math.max(state.newestBucket, at);
    state.buckets.set(at, units);
  }

  private putMember(state: KeyState, member: string, row: CounterMember): void {
    if (row.seen < state.newestSeen) state.membersInOrder = false;
    state.newestSeen = Math.max(state.newestSeen, row.seen);
    state.members.set(member, row);
  }

  /** The key's live buckets, oldest first (as the SQL store's ORDER BY at). */
  private *bucketsInOrder(state: KeyState): Generator<CounterBucket> {
    const entries = state.bucketsInOrder ? state.buckets : [...state.buckets].sort((a, b) => a[0] - b[0]);
    for (const [at, units] of entries) yield { at, units };
  }

  private distinctRetry(limit: DistinctLimit, used: number, fresh: number, now: number): number {
    // Enough of the oldest members must leave the window for the fresh ones to fit.
    if (fresh > limit.limit) return bucketOf(now) + limit.windowMs;
    const mustLeave = used + fresh - limit.limit;
    const seen = [...(this.keys.get(limit.key)?.members.values() ?? [])].map((row) => row.seen).sort((a, b) => a - b);
    const pivot = seen[mustLeave - 1];
    return pivot === undefined ? bucketOf(now) + limit.windowMs : pivot + limit.windowMs;
  }

  /** Every bucket and member of `key` was deleted: the tables lose them all, whatever came before. */
  private wipe(key: string): void {
    this.wiped.add(key);
    this.dirtyBuckets.delete(key);
    this.dirtyMembers.delete(key);
  }

  private markBucket(key: string, at: number): void {
    addToSet(this.dirtyBuckets, key, at);
  }

  private markMember(key: string, member: string): void {
    addToSet(this.dirtyMembers, key, member);
  }
}

function addToSet<T>(sets: Map<string, Set<T>>, key: string, value: T): void {
  let set = sets.get(key);
  if (set === undefined) {
    set = new Set();
    sets.set(key, set);
  }
  set.add(value);
}

/** How many distinct members (recipients) the store holds in memory at most, over every key. */
export interface MemberBudget {
  members: number;
}

/** About 200 MB (about 200 bytes a member, measured): a million distinct recipients in the day, over every user. */
export const DEFAULT_MEMBER_BUDGET: MemberBudget = { members: 1_000_000 };
/** Over the budget, a key holding this share of it is refused new members... */
const LARGE_SHARE = 0.01;
/** ...and past this multiple of it, every key is. */
const HARD_LIMIT_FACTOR = 1.25;

/**
 * A reservation refused because the relay's memory for distinct recipients is full: a hostile or
 * runaway sender must not grow the relay's memory without end (the SQLite store grew the disk).
 * The check runner answers it 452 4.3.1 (mail system full) and logs this message; nothing is reserved.
 */
export class MemberBudgetExceeded extends Error {
  /** "Mail system full": the check runner answers 452 4.3.1 (core/storage-full.ts). */
  readonly code = COUNTER_MEMORY_FULL;

  constructor(
    readonly key: string,
    readonly keyMembers: number,
    readonly heldMembers: number,
    readonly budget: number,
  ) {
    super(`the relay's memory for distinct recipients is full (${heldMembers} held, budget ${budget}); ${key} holds ${keyMembers}: no new recipient for it until some leave their window`);
    this.name = 'MemberBudgetExceeded';
  }
}

function emptyState(head: CounterHead): KeyState {
  return { head, buckets: new Map(), members: new Map(), bucketsInOrder: true, newestBucket: -Infinity, membersInOrder: true, newestSeen: -Infinity };
}

/** Puts a key's buckets and members back in time order (after a use older than the newest), so that its expiry reads the front again. */
function restoreOrder(state: KeyState): void {
  if (!state.bucketsInOrder) {
    const sorted = [...state.buckets].sort((a, b) => a[0] - b[0]);
    state.buckets.clear();
    for (const [at, units] of sorted) state.buckets.set(at, units);
    state.bucketsInOrder = true;
  }
  if (!state.membersInOrder) {
    const sorted = [...state.members].sort((a, b) => a[1].seen - b[1].seen);
    state.members.clear();
    for (const [member, row] of sorted) state.members.set(member, row);
    state.membersInOrder = true;
    state.newestSeen = sorted.at(-1)?.[1].seen ?? -Infinity;
  }
}

function sumUnits(buckets: Map<number, number>, include: (at: number) => boolean): number {
  let sum = 0;
  for (const [at, units] of buckets) if (include(at)) sum += units;
  return sum;
}

function refusal(key: string, limit: number, used: number, retryAt: number): Refusal {
  return { key, limit, used, retryAt };
}
