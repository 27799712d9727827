// CounterStore on SQLite: per-second buckets with a running sum (see core/counters.ts for why).
// Every reserve runs in one IMMEDIATE transaction, so the check "would this exceed?" and the write
// are one step even across several connections (processes) to the same database file.
//
// Tables: `counter_heads` (one row per key: the running `total` of its buckets or members, the
// window it is kept for, and `live_until`, when its newest use leaves), `counter_buckets` (units
// per key and second), `counter_members` (distinct keys: a member's latest sighting `seen`, held or
// not, and its latest settled one `committed`), `counter_holds` (one row per held use, found by
// transaction). Invariant, kept by every transaction: a head's total is the sum of its buckets'
// units (or the count of its members), so a bucket that leaves the window is subtracted and
// deleted in one step, and the usage of a window costs a few index lookups whatever its traffic.
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
import { immediate, type Db } from './sqlite.js';

interface HeadRow {
  window_ms: number;
  total: number;
  live_until: number;
}

interface HoldRow {
  id: number;
  item: string;
  key: string;
  member: string | null;
  at: number;
  units: number;
}

interface MemberRow {
  seen: number;
  committed: number | null;
}

export class SqliteCounterStore implements CounterStore {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  async reserve(request: { limits: WindowLimit[]; distinct?: DistinctLimit[]; hold?: Hold }): Promise<ReserveOutcome> {
    const now = this.clock.now();
    const at = bucketOf(now);
    const distinct = (request.distinct ?? []).map((limit) => ({ ...limit, members: [...new Set(limit.members)] }));
    return immediate(this.db, (): ReserveOutcome => {
      for (const limit of request.limits) {
        const used = this.expire(limit.key, limit.windowMs, now);
        if (used + limit.units > limit.limit) {
          const retryAt = retryTime(this.liveBuckets(limit.key), used, limit.limit, limit.units, limit.windowMs, now);
          return { ok: false, refused: refusal(limit.key, limit.limit, used, retryAt) };
        }
      }
      const newcomers: number[] = [];
      for (const limit of distinct) {
        const used = this.expire(limit.key, limit.windowMs, now);
        const fresh = limit.members.filter((member) => this.member(limit.key, member) === undefined).length;
        if (used + fresh > limit.limit) return { ok: false, refused: refusal(limit.key, limit.limit, used, this.distinctRetry(limit, used, fresh, now)) };
        newcomers.push(fresh);
      }
      for (const limit of request.limits) {
        this.addToBucket(limit.key, at, limit.units, limit.windowMs);
        if (request.hold) this.hold(request.hold, limit.key, null, at, limit.units, limit.windowMs);
      }
      for (const [i, limit] of distinct.entries()) {
        for (const member of limit.members) {
          this.sql(
            `INSERT INTO counter_members (key, member, seen, committed) VALUES (?, ?, ?, ?)
             ON CONFLICT (key, member) DO UPDATE SET seen = MAX(seen, excluded.seen), committed = COALESCE(excluded.committed, committed)`,
          ).run(limit.key, member, at, request.hold ? null : at);
          if (request.hold) this.hold(request.hold, limit.key, member, at, 1, limit.windowMs);
        }
        this.moveHead(limit.key, newcomers[i] ?? 0, at, limit.windowMs);
      }
      return { ok: true };
    });
  }

  async settle(transaction: string, keep: string[]): Promise<void> {
    const now = this.clock.now();
    const kept = new Set(keep);
    immediate(this.db, () => {
      const holds = this.sql('SELECT id, item, key, member, at, units FROM counter_holds WHERE tx = ?').all(transaction) as HoldRow[];
      for (const hold of holds) {
        this.sql('DELETE FROM counter_holds WHERE id = ?').run(hold.id);
        if (hold.member === null) {
          if (!kept.has(hold.item)) this.releaseUnits(hold);
        } else if (kept.has(hold.item)) {
          this.sql('UPDATE counter_members SET committed = MAX(COALESCE(committed, 0), ?) WHERE key = ? AND member = ?').run(hold.at, hold.key, hold.member);
        } else {
          this.releaseSighting(hold.key, hold.member, now);
        }
      }
    });
  }

  async add(key: string, units: number, windowMs: number): Promise<number> {
    const now = this.clock.now();
    return immediate(this.db, () => {
      const used = this.expire(key, windowMs, now);
      this.addToBucket(key, bucketOf(now), units, windowMs);
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
      const heads = this.sql('SELECT key, window_ms FROM counter_heads').all() as Array<{ key: string; window_ms: number }>;
      for (const head of heads) deleted += this.subtractLeft(head.key, head.window_ms, now);
      // Every use of these keys has left: the heads (total 0 now) go as well.
      this.sql('DELETE FROM counter_heads WHERE live_until <= ?').run(now);
      this.sql('DELETE FROM counter_holds WHERE leaves_at <= ?').run(now);
      return deleted;
    });
  }

  /** Brings the key's head to `now` (subtracting and deleting what left the window); returns its usage. */
  private expire(key: string, windowMs: number, now: number): number {
    const head = this.head(key);
    if (head === undefined) return 0;
    if (head.window_ms !== windowMs) return this.rebuild(key, windowMs, now);
    if (head.live_until <= now) {
      // Nothing of the key is live: start it afresh rather than subtract bucket by bucket.
      this.sql('DELETE FROM counter_buckets WHERE key = ?').run(key);
      this.sql('DELETE FROM counter_members WHERE key = ?').run(key);
      this.sql('UPDATE counter_heads SET total = 0 WHERE key = ?').run(key);
      return 0;
    }
    this.subtractLeft(key, windowMs, now);
    return this.head(key)?.total ?? 0;
  }

  /** Subtracts and deletes the buckets and members of `key` that left its window; returns how many. */
  private subtractLeft(key: string, windowMs: number, now: number): number {
    const buckets = this.sql('DELETE FROM counter_buckets WHERE key = ? AND at <= ? RETURNING units').all(key, now - windowMs) as Array<{ units: number }>;
    const members = this.sql('DELETE FROM counter_members WHERE key = ? AND seen <= ? RETURNING seen').all(key, now - windowMs);
    const left = buckets.reduce((sum, bucket) => sum + bucket.units, 0) + members.length;
    if (left > 0) this.sql('UPDATE counter_heads SET total = total - ? WHERE key = ?').run(left, key);
    return buckets.length + members.length;
  }

  /** The key is used with another window than its head was kept for: count it again from its rows. */
  private rebuild(key: string, windowMs: number, now: number): number {
    this.sql('DELETE FROM counter_buckets WHERE key = ? AND at <= ?').run(key, now - windowMs);
    this.sql('DELETE FROM counter_members WHERE key = ? AND seen <= ?').run(key, now - windowMs);
    const units = this.sql('SELECT COALESCE(SUM(units), 0) AS n FROM counter_buckets WHERE key = ?').get(key) as { n: number };
    const members = this.sql('SELECT COUNT(*) AS n FROM counter_members WHERE key = ?').get(key) as { n: number };
    const total = units.n + members.n;
    this.sql('UPDATE counter_heads SET window_ms = ?, total = ? WHERE key = ?').run(windowMs, total, key);
    return total;
  }

  private addToBucket(key: string, at: number, units: number, windowMs: number): void {
    this.sql('INSERT INTO counter_buckets (key, at, units) VALUES (?, ?, ?) ON CONFLICT (key, at) DO UPDATE SET units = units + excluded.units').run(key, at, units);
    this.moveHead(key, units, at, windowMs);
  }

  private moveHead(key: string, delta: number, at: number, windowMs: number): void {
    this.sql(
      `INSERT INTO counter_heads (key, window_ms, total, live_until) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET total = total + excluded.total, live_until = MAX(live_until, excluded.live_until)`,
    ).run(key, windowMs, delta, at + windowMs);
  }

  private hold(hold: Hold, key: string, member: string | null, at: number, units: number, windowMs: number): void {
    this.sql('INSERT INTO counter_holds (tx, item, key, member, at, units, leaves_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      hold.transaction,
      hold.item,
      key,
      member,
      at,
      units,
      at + windowMs,
    );
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
    const held = this.sql('SELECT MAX(at) AS at FROM counter_holds WHERE key = ? AND member = ?').get(key, member) as { at: number | null };
    const latest = Math.max(row.committed ?? -Infinity, held.at ?? -Infinity);
    if (latest === -Infinity || hasLeft(latest, head.window_ms, now)) {
      this.sql('DELETE FROM counter_members WHERE key = ? AND member = ?').run(key, member);
      this.sql('UPDATE counter_heads SET total = total - 1 WHERE key = ?').run(key);
    } else if (latest !== row.seen) {
      this.sql('UPDATE counter_members SET seen = ? WHERE key = ? AND member = ?').run(latest, key, member);
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
    return this.sql('SELECT window_ms, total, live_until FROM counter_heads WHERE key = ?').get(key) as HeadRow | undefined;
  }

  private member(key: string, member: string): MemberRow | undefined {
    return this.sql('SELECT seen, committed FROM counter_members WHERE key = ? AND member = ?').get(key, member) as MemberRow | undefined;
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

function refusal(key: string, limit: number, used: number, retryAt: number): Refusal {
  return { key, limit, used, retryAt };
}
