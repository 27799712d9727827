// CounterStore on SQLite: per-second buckets with a running sum (see core/counters.ts for why).
// Every reserve runs in one IMMEDIATE transaction, so the check "would this exceed?" and the write
// are one step even across several connections (processes) to the same database file.
//
// Tables: `counter_heads` (one row per key: the running `total` of its buckets or members, the
// window it is kept for, `live_until`, when its newest use leaves, and `oldest`, never later than
// its oldest bucket or member), `counter_buckets` (units per key and second), `counter_members`
// (distinct keys: a member's latest sighting `seen`, held or not, and its latest settled one
// `committed`), `counter_holds` (the held uses, stored by transaction: one row per item, key and
// second). Invariant, kept by every transaction: a head's total is the sum of its buckets' units
// (or the count of its members), so a bucket that leaves the window is subtracted and deleted in
// one step, and the usage of a window costs a few index lookups whatever its traffic. While
// `oldest` is inside the window nothing can have left it, so a write only reads the head: it looks
// for rows to subtract at most once per second and key. Every write that can make a use older than
// `oldest` (a connection whose clock is behind, a sighting given back) lowers it.
//
// Cost: the relay pays one reserve per RCPT and one settle per message on its event loop, so an
// admitted reservation writes each table in one statement, settling reads no kept hold into
// JavaScript, and each commit writes few pages (no index that only housekeeping would read).
import type { Statement } from 'better-sqlite3';
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
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
import type { CounterRows } from './memory-counter-store.js';
import { immediate, type Db } from './sqlite.js';

interface HeadRow {
  window_ms: number;
  total: number;
  live_until: number;
  oldest: number;
}

type ReserveRequest = Parameters<CounterStore['reserve']>[0];

interface HoldRow {
  key: string;
  /** The distinct member a held sighting is of; '' for held window units. */
  member: string;
  /** 1: a held sighting of `member`; 0: held units of a window. */
  sighting: number;
  at: number;
  units: number;
}

interface MemberRow {
  seen: number;
  committed: number | null;
}

/** What subtracting the uses that left a window removed: rows deleted, units (or members) subtracted. */
interface Subtracted {
  rows: number;
  units: number;
}

export class SqliteCounterStore implements CounterStore {
  private readonly statements = new Map<string, Statement>();
  /** Statements whose text depends on how many rows they write, by name and row count. */
  private readonly batches = new Map<string, Statement[]>();
  // The transactions of the hot path, made once: better-sqlite3 builds a wrapper per `transaction()` call.
  private readonly reserveTransaction;
  private readonly settleTransaction;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {
    this.reserveTransaction = db.transaction((request: ReserveRequest, now: number) => this.reserveNow(request, now));
    this.settleTransaction = db.transaction((transaction: string, keep: string[], now: number) => this.settleNow(transaction, keep, now));
  }

  async reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    // IMMEDIATE: the write lock is taken first, so the check and the write are one step for every connection.
    return this.reserveTransaction.immediate(request, this.clock.now());
  }

  private reserveNow(request: ReserveRequest, now: number): ReserveOutcome {
    const distinct = (request.distinct ?? []).map((limit) => ({ ...limit, members: [...new Set(limit.members)] }));
    for (const limit of request.limits) {
      const used = this.usage(limit.key, limit.windowMs, now);
      if (used + limit.units > limit.limit) {
        const retryAt = retryTime(this.liveBuckets(limit.key), used, limit.limit, limit.units, limit.windowMs, now);
        return { ok: false, refused: refusal(limit.key, limit.limit, used, retryAt) };
      }
    }
    const newcomers: number[] = [];
    for (const limit of distinct) {
      const used = this.usage(limit.key, limit.windowMs, now);
      // Every member row left is live: usage() deleted those that left the window.
      const known = this.knownMembers(limit.key, limit.members);
      const fresh = limit.members.filter((member) => !known.has(member)).length;
      if (used + fresh > limit.limit) return { ok: false, refused: refusal(limit.key, limit.limit, used, this.distinctRetry(limit, used, fresh, now)) };
      newcomers.push(fresh);
    }
    this.write(request.limits, distinct, newcomers, bucketOf(now), request.hold);
    return { ok: true };
  }

  /** The key's usage at `now`, after subtracting (and deleting) what left its window. */
  private usage(key: string, windowMs: number, now: number): number {
    const head = this.head(key);
    return head === undefined ? 0 : this.expire(key, head, windowMs, now);
  }

  /** The writes of an admitted reservation: one statement per table, whatever the number of limits. */
  private write(limits: WindowLimit[], distinct: DistinctLimit[], newcomers: number[], at: number, hold: Hold | undefined): void {
    const members = distinct.flatMap((limit) => limit.members.map((member) => ({ key: limit.key, member, windowMs: limit.windowMs })));
    if (limits.length > 0) {
      this.batch('buckets', limits.length, (n) => `INSERT INTO counter_buckets (key, at, units) VALUES ${valueRows(n, 3)} ON CONFLICT (key, at) DO UPDATE SET units = units + excluded.units`).run(
        limits.flatMap((limit) => [limit.key, at, limit.units]),
      );
    }
    if (members.length > 0) {
      this.batch(
        'members',
        members.length,
        (n) => `INSERT INTO counter_members (key, member, seen, committed) VALUES ${valueRows(n, 4)}
         ON CONFLICT (key, member) DO UPDATE SET seen = MAX(seen, excluded.seen), committed = COALESCE(excluded.committed, committed)`,
      ).run(members.flatMap(({ key, member }) => [key, member, at, hold ? null : at]));
    }
    this.moveHeads([
      ...limits.map((limit) => ({ key: limit.key, delta: limit.units, windowMs: limit.windowMs })),
      ...distinct.map((limit, i) => ({ key: limit.key, delta: newcomers[i] ?? 0, windowMs: limit.windowMs })),
    ], at);
    if (hold === undefined) return;
    const holds = [
      ...limits.map((limit) => [limit.key, '', 0, limit.units, limit.windowMs] as const),
      ...members.map(({ key, member, windowMs }) => [key, member, 1, 1, windowMs] as const),
    ];
    if (holds.length === 0) return;
    this.batch(
      'holds',
      holds.length,
      (n) => `INSERT INTO counter_holds (tx, item, key, member, sighting, at, units, leaves_at) VALUES ${valueRows(n, 8)}
       ON CONFLICT (tx, item, key, member, at) DO UPDATE SET units = units + excluded.units`,
    ).run(holds.flatMap(([key, member, sighting, units, windowMs]) => [hold.transaction, hold.item, key, member, sighting, at, units, at + windowMs]));
  }

  async settle(transaction: string, keep: string[]): Promise<void> {
    this.settleTransaction.immediate(transaction, keep, this.clock.now());
  }

  /**
   * Set-based, so that the common case (every recipient accepted) reads no hold into JavaScript:
   * the kept sightings are committed and the kept holds deleted by one statement each; only the
   * holds given back come out, to be released one by one.
   */
  private settleNow(transaction: string, keep: string[], now: number): void {
    const kept = JSON.stringify(keep);
    // Kept sightings first: a sighting given back below then counts from a kept one if later.
    this.sql(
      `UPDATE counter_members SET committed = MAX(COALESCE(committed, 0), held.at)
       FROM (SELECT key, member, MAX(at) AS at FROM counter_holds
             WHERE tx = ? AND sighting = 1 AND item IN (SELECT value FROM json_each(?)) GROUP BY key, member) AS held
       WHERE counter_members.key = held.key AND counter_members.member = held.member`,
    ).run(transaction, kept);
    this.sql('DELETE FROM counter_holds WHERE tx = ? AND item IN (SELECT value FROM json_each(?))').run(transaction, kept);
    const givenBack = this.sql('DELETE FROM counter_holds WHERE tx = ? RETURNING key, member, sighting, at, units').all(transaction) as HoldRow[];
    for (const hold of givenBack) {
      if (hold.sighting === 1) this.releaseSighting(hold.key, hold.member, now);
      else this.releaseUnits(hold);
    }
  }

  async add(key: string, units: number, windowMs: number): Promise<number> {
    const now = this.clock.now();
    return immediate(this.db, () => {
      const used = this.usage(key, windowMs, now);
      const at = bucketOf(now);
      this.sql('INSERT INTO counter_buckets (key, at, units) VALUES (?, ?, ?) ON CONFLICT (key, at) DO UPDATE SET units = units + excluded.units').run(key, at, units);
      this.moveHeads([{ key, delta: units, windowMs }], at);
      return used + units;
    });
  }

  async total(key: string, windowMs: number): Promise<number> {
    // One read transaction: the head and its buckets from the same snapshot.
    return this.db.transaction(() => this.totalNow(key, windowMs, this.clock.now()))();
  }

  private totalNow(key: string, windowMs: number, now: number): number {
    const head = this.head(key);
    if (head === undefined) return 0;
    if (head.window_ms !== windowMs) {
      const row = this.sql('SELECT COALESCE(SUM(units), 0) AS n FROM counter_buckets WHERE key = ? AND at > ?').get(key, now - windowMs) as { n: number };
      return row.n;
    }
    if (!hasLeft(head.oldest, windowMs, now)) return head.total;
    // The running sum, less the buckets that left since the last write (not yet subtracted).
    const left = this.sql('SELECT COALESCE(SUM(units), 0) AS n FROM counter_buckets WHERE key = ? AND at <= ?').get(key, now - windowMs) as { n: number };
    return head.total - left.n;
  }

  async buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    return this.sql('SELECT at, units FROM counter_buckets WHERE key = ? AND at > ? ORDER BY at').all(key, this.clock.now() - windowMs) as CounterBucket[];
  }

  async countDistinct(key: string, windowMs: number): Promise<number> {
    return this.db.transaction(() => this.countDistinctNow(key, windowMs, this.clock.now()))();
  }

  private countDistinctNow(key: string, windowMs: number, now: number): number {
    const head = this.head(key);
    if (head === undefined) return 0;
    if (head.window_ms !== windowMs) {
      return (this.sql('SELECT COUNT(*) AS n FROM counter_members WHERE key = ? AND seen > ?').get(key, now - windowMs) as { n: number }).n;
    }
    if (!hasLeft(head.oldest, windowMs, now)) return head.total;
    const left = this.sql('SELECT COUNT(*) AS n FROM counter_members WHERE key = ? AND seen <= ?').get(key, now - windowMs) as { n: number };
    return head.total - left.n;
  }

  async reset(key: string): Promise<void> {
    immediate(this.db, () => {
      for (const table of ['counter_heads', 'counter_buckets', 'counter_members', 'counter_holds']) {
        this.sql(`DELETE FROM ${table} WHERE key = ?`).run(key);
      }
    });
  }

  async purgeExpired(): Promise<number> {
    const now = this.clock.now();
    return immediate(this.db, () => {
      let deleted = 0;
      // Only the keys whose oldest use may have left: the others have nothing to delete.
      const heads = this.sql('SELECT key, window_ms FROM counter_heads WHERE oldest + window_ms <= ?').all(now) as Array<{ key: string; window_ms: number }>;
      for (const head of heads) deleted += this.subtractLeft(head.key, head.window_ms, now).rows;
      // Every use of these keys has left: the heads (total 0 now) go as well.
      this.sql('DELETE FROM counter_heads WHERE live_until <= ?').run(now);
      this.sql('DELETE FROM counter_holds WHERE leaves_at <= ?').run(now);
      return deleted;
    });
  }

  /**
   * Writes rows as the relay's in-memory counters changed them (memory-counter-store.ts): every
   * bucket and member of the wiped keys deleted first, then each row given set or deleted; one
   * transaction. Rows are written as they are, not added to: the relay's thread is the only writer
   * of these keys (relay-counters.ts).
   */
  async applyChanges(changes: CounterRows): Promise<void> {
    immediate(this.db, () => {
      for (const key of changes.wiped) {
        this.sql('DELETE FROM counter_buckets WHERE key = ?').run(key);
        this.sql('DELETE FROM counter_members WHERE key = ?').run(key);
      }
      for (const [key, at, units] of changes.buckets) {
        if (units === null) this.sql('DELETE FROM counter_buckets WHERE key = ? AND at = ?').run(key, at);
        else this.sql('INSERT INTO counter_buckets (key, at, units) VALUES (?, ?, ?) ON CONFLICT (key, at) DO UPDATE SET units = excluded.units').run(key, at, units);
      }
      for (const [key, member, row] of changes.members) {
        if (row === null) this.sql('DELETE FROM counter_members WHERE key = ? AND member = ?').run(key, member);
        else {
          this.sql('INSERT INTO counter_members (key, member, seen, committed) VALUES (?, ?, ?, ?) ON CONFLICT (key, member) DO UPDATE SET seen = excluded.seen, committed = excluded.committed').run(
            key,
            member,
            row.seen,
            row.committed,
          );
        }
      }
      for (const [key, head] of changes.heads) {
        if (head === null) this.sql('DELETE FROM counter_heads WHERE key = ?').run(key);
        else {
          this.sql(
            `INSERT INTO counter_heads (key, window_ms, total, live_until, oldest) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET window_ms = excluded.window_ms, total = excluded.total, live_until = excluded.live_until, oldest = excluded.oldest`,
          ).run(key, head.windowMs, head.total, head.liveUntil, head.oldest);
        }
      }
    });
  }

  /** The heads, buckets and members of every key that starts with one of `prefixes` (for MemoryCounterStore.load). */
  async rowsWithPrefixes(prefixes: string[]): Promise<CounterRows> {
    const rows: CounterRows = { heads: [], buckets: [], members: [], wiped: [] };
    this.db.transaction(() => {
      for (const prefix of prefixes) {
        // A range on the primary key rather than LIKE: the prefix is text, not a pattern.
        const range = [prefix, `${prefix}\uffff`];
        const heads = this.sql('SELECT key, window_ms, total, live_until, oldest FROM counter_heads WHERE key >= ? AND key < ?').all(...range) as Array<HeadRow & { key: string }>;
        for (const head of heads) rows.heads.push([head.key, { windowMs: head.window_ms, total: head.total, liveUntil: head.live_until, oldest: head.oldest }]);
        const buckets = this.sql('SELECT key, at, units FROM counter_buckets WHERE key >= ? AND key < ?').all(...range) as Array<{ key: string; at: number; units: number }>;
        for (const bucket of buckets) rows.buckets.push([bucket.key, bucket.at, bucket.units]);
        const members = this.sql('SELECT key, member, seen, committed FROM counter_members WHERE key >= ? AND key < ?').all(...range) as Array<{ key: string; member: string } & MemberRow>;
        for (const member of members) rows.members.push([member.key, member.member, { seen: member.seen, committed: member.committed }]);
      }
    })();
    return rows;
  }

  /** Brings the key's head to `now` (subtracting and deleting what left the window); returns its usage. */
  private expire(key: string, head: HeadRow, windowMs: number, now: number): number {
    if (head.window_ms !== windowMs) return this.rebuild(key, windowMs, now);
    if (head.live_until <= now) {
      // Nothing of the key is live: start it afresh rather than subtract bucket by bucket.
      this.sql('DELETE FROM counter_buckets WHERE key = ?').run(key);
      this.sql('DELETE FROM counter_members WHERE key = ?').run(key);
      this.sql('UPDATE counter_heads SET total = 0, oldest = ? WHERE key = ?').run(now, key);
      return 0;
    }
    // The oldest use is still in the window: nothing has left it, the running sum is the usage.
    if (!hasLeft(head.oldest, windowMs, now)) return head.total;
    return head.total - this.subtractLeft(key, windowMs, now).units;
  }

  /** Subtracts and deletes the buckets and members of `key` that left its window; the head keeps its oldest remaining use. */
  private subtractLeft(key: string, windowMs: number, now: number): Subtracted {
    const buckets = this.sql('DELETE FROM counter_buckets WHERE key = ? AND at <= ? RETURNING units').all(key, now - windowMs) as Array<{ units: number }>;
    const members = this.sql('DELETE FROM counter_members WHERE key = ? AND seen <= ? RETURNING seen').all(key, now - windowMs);
    const units = buckets.reduce((sum, bucket) => sum + bucket.units, 0) + members.length;
    const oldest = this.oldestUse(key, now);
    this.sql('UPDATE counter_heads SET total = total - ?, oldest = ? WHERE key = ?').run(units, oldest, key);
    return { rows: buckets.length + members.length, units };
  }

  /** The time of the key's oldest bucket or member; `now` when it has none (every later write lowers it to its own). */
  private oldestUse(key: string, now: number): number {
    const row = this.sql(
      'SELECT (SELECT MIN(at) FROM counter_buckets WHERE key = ?) AS bucket, (SELECT MIN(seen) FROM counter_members WHERE key = ?) AS member',
    ).get(key, key) as { bucket: number | null; member: number | null };
    return Math.min(row.bucket ?? now, row.member ?? now, now);
  }

  /** The key is used with another window than its head was kept for: count it again from its rows. */
  private rebuild(key: string, windowMs: number, now: number): number {
    this.sql('DELETE FROM counter_buckets WHERE key = ? AND at <= ?').run(key, now - windowMs);
    this.sql('DELETE FROM counter_members WHERE key = ? AND seen <= ?').run(key, now - windowMs);
    const units = this.sql('SELECT COALESCE(SUM(units), 0) AS n FROM counter_buckets WHERE key = ?').get(key) as { n: number };
    const members = this.sql('SELECT COUNT(*) AS n FROM counter_members WHERE key = ?').get(key) as { n: number };
    const total = units.n + members.n;
    this.sql('UPDATE counter_heads SET window_ms = ?, total = ?, oldest = ? WHERE key = ?').run(windowMs, total, this.oldestUse(key, now), key);
    return total;
  }

  /** Adds each delta to its key's running sum, creating the heads that are new; one statement. */
  private moveHeads(moves: Array<{ key: string; delta: number; windowMs: number }>, at: number): void {
    if (moves.length === 0) return;
    this.batch(
      'heads',
      moves.length,
      (n) => `INSERT INTO counter_heads (key, window_ms, total, live_until, oldest) VALUES ${valueRows(n, 5)}
       ON CONFLICT (key) DO UPDATE SET total = total + excluded.total, live_until = MAX(live_until, excluded.live_until), oldest = MIN(oldest, excluded.oldest)`,
    ).run(moves.flatMap(({ key, delta, windowMs }) => [key, windowMs, delta, at + windowMs, at]));
  }

  /** Gives back held units: out of their bucket and the running sum, unless the bucket is gone (left, reset). */
  private releaseUnits(hold: HoldRow): void {
    const bucket = this.sql('UPDATE counter_buckets SET units = units - ? WHERE key = ? AND at = ? RETURNING units').get(hold.units, hold.key, hold.at) as { units: number } | undefined;
    if (bucket === undefined) return;
    if (bucket.units <= 0) this.sql('DELETE FROM counter_buckets WHERE key = ? AND at = ?').run(hold.key, hold.at);
    this.sql('UPDATE counter_heads SET total = total - ? WHERE key = ?').run(hold.units, hold.key);
  }

  /** Gives back a held sighting: the member counts from its latest remaining sighting, or leaves. */
  private releaseSighting(key: string, member: string, now: number): void {
    const row = this.member(key, member);
    const head = this.head(key);
    if (row === undefined || head === undefined) return;
    const held = this.sql('SELECT MAX(at) AS at FROM counter_holds WHERE key = ? AND member = ? AND sighting = 1').get(key, member) as { at: number | null };
    const latest = Math.max(row.committed ?? -Infinity, held.at ?? -Infinity);
    if (latest === -Infinity || hasLeft(latest, head.window_ms, now)) {
      this.sql('DELETE FROM counter_members WHERE key = ? AND member = ?').run(key, member);
      this.sql('UPDATE counter_heads SET total = total - 1 WHERE key = ?').run(key);
    } else if (latest !== row.seen) {
      // The sighting moves back in time: the head's oldest use may now be this one.
      this.sql('UPDATE counter_members SET seen = ? WHERE key = ? AND member = ?').run(latest, key, member);
      this.sql('UPDATE counter_heads SET oldest = MIN(oldest, ?) WHERE key = ?').run(latest, key);
    }
  }

  private distinctRetry(limit: DistinctLimit, used: number, fresh: number, now: number): number {
    // Enough of the oldest members must leave the window for the fresh ones to fit.
    if (fresh > limit.limit) return bucketOf(now) + limit.windowMs;
    const mustLeave = used + fresh - limit.limit;
    const pivot = this.sql('SELECT seen FROM counter_members WHERE key = ? ORDER BY seen LIMIT 1 OFFSET ?').get(limit.key, mustLeave - 1) as { seen: number } | undefined;
    return pivot ? pivot.seen + limit.windowMs : bucketOf(now) + limit.windowMs;
  }

  private liveBuckets(key: string): IterableIterator<CounterBucket> {
    return this.sql('SELECT at, units FROM counter_buckets WHERE key = ? ORDER BY at').iterate(key) as IterableIterator<CounterBucket>;
  }

  private head(key: string): HeadRow | undefined {
    return this.sql('SELECT window_ms, total, live_until, oldest FROM counter_heads WHERE key = ?').get(key) as HeadRow | undefined;
  }

  /** Which of `members` the key already counts (live: the caller expired the key first). */
  private knownMembers(key: string, members: string[]): Set<string> {
    if (members.length === 0) return new Set();
    const rows = this.batch('known', members.length, (n) => `SELECT member FROM counter_members WHERE key = ? AND member IN (${placeholders(n)})`).all(key, members) as Array<{ member: string }>;
    return new Set(rows.map((row) => row.member));
  }

  private member(key: string, member: string): MemberRow | undefined {
    return this.sql('SELECT seen, committed FROM counter_members WHERE key = ? AND member = ?').get(key, member) as MemberRow | undefined;
  }

  /** A statement written for `count` rows, prepared once per name and count. */
  private batch(name: string, count: number, text: (count: number) => string): Statement {
    let byCount = this.batches.get(name);
    if (byCount === undefined) {
      byCount = [];
      this.batches.set(name, byCount);
    }
    let statement = byCount[count];
    if (statement === undefined) {
      statement = this.db.prepare(text(count));
      byCount[count] = statement;
    }
    return statement;
  }

  /** Statements are prepared once per store (the schema exists: migrations ran when the database opened). */
  private sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }
}

function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

/** `count` rows of `columns` parameters each, for a multi-row VALUES list. */
function valueRows(count: number, columns: number): string {
  const row = `(${placeholders(columns)})`;
  return Array.from({ length: count }, () => row).join(', ');
}

function refusal(key: string, limit: number, used: number, retryAt: number): Refusal {
  return { key, limit, used, retryAt };
}
