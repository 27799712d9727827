// CounterStore on SQLite: a sliding window log (see core/counters.ts for why). Every reserve runs
// in one IMMEDIATE transaction, so the check "would this exceed?" and the write are one step even
// across several connections (processes) to the same database file.
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import {
  retryTime,
  type CounterEntry,
  type CounterStore,
  type DistinctLimit,
  type Hold,
  type Refusal,
  type ReserveOutcome,
  type WindowLimit,
} from '../../core/counters.js';
import { immediate, type Db } from './sqlite.js';

export class SqliteCounterStore implements CounterStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  async reserve(request: { limits: WindowLimit[]; distinct?: DistinctLimit[]; hold?: Hold }): Promise<ReserveOutcome> {
    const now = this.clock.now();
    const distinct = request.distinct ?? [];
    return immediate(this.db, (): ReserveOutcome => {
      for (const limit of request.limits) {
        this.expire(limit.key, now);
        const entries = this.window(limit.key, limit.windowMs, now);
        const used = entries.reduce((sum, entry) => sum + entry.units, 0);
        if (used + limit.units > limit.limit) {
          return { ok: false, refused: this.refusal(limit.key, limit.limit, used, retryTime(entries, limit.limit, limit.units, limit.windowMs, now)) };
        }
      }
      for (const limit of distinct) {
        this.expire(limit.key, now);
        const refused = this.distinctRefusal(limit, now);
        if (refused) return { ok: false, refused };
      }
      const insert = this.db.prepare(
        'INSERT INTO counter_entries (key, member, at, units, expires_at, hold_tx, hold_item) VALUES (?, ?, ?, ?, ?, ?, ?)',
      );
      const holdTx = request.hold?.transaction ?? null;
      const holdItem = request.hold?.item ?? null;
      for (const limit of request.limits) {
        insert.run(limit.key, null, now, limit.units, now + limit.windowMs, holdTx, holdItem);
      }
      for (const limit of distinct) {
        // Every member gets a fresh entry, known or not: "sent to within the last 24 h" rolls forward.
        for (const member of new Set(limit.members)) {
          insert.run(limit.key, member, now, 1, now + limit.windowMs, holdTx, holdItem);
        }
      }
      return { ok: true };
    });
  }

  async settle(transaction: string, keep: string[]): Promise<void> {
    immediate(this.db, () => {
      const kept = new Set(keep);
      const rows = this.db
        .prepare('SELECT id, hold_item FROM counter_entries WHERE hold_tx = ?')
        .all(transaction) as Array<{ id: number; hold_item: string | null }>;
      const release = this.db.prepare('DELETE FROM counter_entries WHERE id = ?');
      const commit = this.db.prepare('UPDATE counter_entries SET hold_tx = NULL, hold_item = NULL WHERE id = ?');
      for (const row of rows) {
        if (row.hold_item !== null && kept.has(row.hold_item)) commit.run(row.id);
        else release.run(row.id);
      }
    });
  }

  async add(key: string, units: number, windowMs: number): Promise<number> {
    const now = this.clock.now();
    return immediate(this.db, () => {
      this.expire(key, now);
      this.db
        .prepare('INSERT INTO counter_entries (key, member, at, units, expires_at) VALUES (?, NULL, ?, ?, ?)')
        .run(key, now, units, now + windowMs);
      return this.window(key, windowMs, now).reduce((sum, entry) => sum + entry.units, 0);
    });
  }

  async total(key: string, windowMs: number): Promise<number> {
    return this.window(key, windowMs, this.clock.now()).reduce((sum, entry) => sum + entry.units, 0);
  }

  async entries(key: string, windowMs: number): Promise<CounterEntry[]> {
    return this.window(key, windowMs, this.clock.now());
  }

  async countDistinct(key: string, windowMs: number): Promise<number> {
    const row = this.db
      .prepare('SELECT COUNT(DISTINCT member) AS n FROM counter_entries WHERE key = ? AND at > ? AND member IS NOT NULL')
      .get(key, this.clock.now() - windowMs) as { n: number };
    return row.n;
  }

  async reset(key: string): Promise<void> {
    this.db.prepare('DELETE FROM counter_entries WHERE key = ?').run(key);
  }

  async purgeExpired(): Promise<number> {
    return this.db.prepare('DELETE FROM counter_entries WHERE expires_at <= ?').run(this.clock.now()).changes;
  }

  private expire(key: string, now: number): void {
    this.db.prepare('DELETE FROM counter_entries WHERE key = ? AND expires_at <= ?').run(key, now);
  }

  private window(key: string, windowMs: number, now: number): CounterEntry[] {
    return this.db
      .prepare('SELECT at, units FROM counter_entries WHERE key = ? AND at > ? ORDER BY at, id')
      .all(key, now - windowMs) as CounterEntry[];
  }

  private distinctRefusal(limit: DistinctLimit, now: number): Refusal | undefined {
    // Last time each member was seen within the window, oldest first.
    const seen = this.db
      .prepare(
        'SELECT member, MAX(at) AS last FROM counter_entries WHERE key = ? AND at > ? AND member IS NOT NULL GROUP BY member ORDER BY last',
      )
      .all(limit.key, now - limit.windowMs) as Array<{ member: string; last: number }>;
    const known = new Set(seen.map((row) => row.member));
    const fresh = new Set(limit.members.filter((member) => !known.has(member)));
    if (seen.length + fresh.size <= limit.limit) return undefined;
    // Enough of the oldest members must leave the window for the fresh ones to fit.
    const mustLeave = seen.length + fresh.size - limit.limit;
    const pivot = fresh.size > limit.limit ? undefined : seen[mustLeave - 1];
    return this.refusal(limit.key, limit.limit, seen.length, pivot ? pivot.last + limit.windowMs : now + limit.windowMs);
  }

  private refusal(key: string, limit: number, used: number, retryAt: number): Refusal {
    return { key, limit, used, retryAt };
  }
}
