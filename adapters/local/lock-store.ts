// Lock states and their history in SQLite. `write` checks the version and appends the history in
// one IMMEDIATE transaction, so two sessions that lock (or unlock) the same user at once cannot
// both win.
import type { Symbol } from '../../core/checks/check.js';
import type { LockEvent, LockEventKind, LockPlacer, LockState, LockStore } from '../../core/locks.js';
import { immediate, type Db } from './sqlite.js';

interface StateRow {
  user_id: string;
  tenant_id: string;
  identity: string;
  locked: number;
  permanent: number;
  locked_at: number | null;
  until: number | null;
  reasons: string;
  timed_unlocks: number;
  placed_by: string | null;
  version: number;
}

const placer = (value: string | null): LockPlacer | null => (value === 'operator' || value === 'tenant' ? value : null);

interface EventRow {
  detail: string;
}

function parseReasons(text: string): Symbol[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) return [];
  return parsed.filter((item): item is Symbol => typeof item === 'object' && item !== null && typeof (item as { name?: unknown }).name === 'string');
}

const toState = (row: StateRow): LockState => ({
  userId: row.user_id,
  tenantId: row.tenant_id,
  identity: row.identity,
  locked: row.locked === 1,
  permanent: row.permanent === 1,
  lockedAt: row.locked_at,
  until: row.until,
  reasons: parseReasons(row.reasons),
  timedUnlocks: row.timed_unlocks,
  placedBy: placer(row.placed_by),
  version: row.version,
});

const KINDS: ReadonlySet<string> = new Set<LockEventKind>(['lock', 'timed-unlock', 'manual-unlock']);

function toEvent(row: EventRow): LockEvent | undefined {
  const parsed: unknown = JSON.parse(row.detail);
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const kind = (parsed as { kind?: unknown }).kind;
  // Written only by `write` below; the check keeps a hand-edited row from passing as an event.
  return typeof kind === 'string' && KINDS.has(kind) ? (parsed as LockEvent) : undefined;
}

export class SqliteLockStore implements LockStore {
  constructor(private readonly db: Db) {}

  async read(userId: string): Promise<LockState | undefined> {
    const row = this.db.prepare('SELECT * FROM user_locks WHERE user_id = ?').get(userId) as StateRow | undefined;
    return row ? toState(row) : undefined;
  }

  async write(next: LockState, expectedVersion: number, events: LockEvent[]): Promise<boolean> {
    return immediate(this.db, () => {
      const row = this.db.prepare('SELECT version FROM user_locks WHERE user_id = ?').get(next.userId) as { version: number } | undefined;
      if ((row?.version ?? 0) !== expectedVersion) return false;
      this.db
        .prepare(
          `INSERT INTO user_locks (user_id, tenant_id, identity, locked, permanent, locked_at, until, reasons, timed_unlocks, placed_by, version)
           VALUES (@userId, @tenantId, @identity, @locked, @permanent, @lockedAt, @until, @reasons, @timedUnlocks, @placedBy, @version)
           ON CONFLICT(user_id) DO UPDATE SET tenant_id = excluded.tenant_id, identity = excluded.identity, locked = excluded.locked,
             permanent = excluded.permanent, locked_at = excluded.locked_at, until = excluded.until, reasons = excluded.reasons,
             timed_unlocks = excluded.timed_unlocks, placed_by = excluded.placed_by, version = excluded.version`,
        )
        .run({
          userId: next.userId,
          tenantId: next.tenantId,
          identity: next.identity,
          locked: next.locked ? 1 : 0,
          permanent: next.permanent ? 1 : 0,
          lockedAt: next.lockedAt,
          until: next.until,
          reasons: JSON.stringify(next.reasons),
          timedUnlocks: next.timedUnlocks,
          placedBy: next.placedBy,
          version: next.version,
        });
      const insert = this.db.prepare('INSERT INTO user_lock_events (user_id, tenant_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)');
      for (const event of events) insert.run(event.userId, event.tenantId, event.at, event.kind, JSON.stringify(event));
      return true;
    });
  }

  async history(userId: string): Promise<LockEvent[]> {
    const rows = this.db.prepare('SELECT detail FROM user_lock_events WHERE user_id = ? ORDER BY at, id').all(userId) as EventRow[];
    return rows.map(toEvent).filter((event): event is LockEvent => event !== undefined);
  }

  async listLocked(filter: { tenantId?: string }): Promise<LockState[]> {
    const rows = (
      filter.tenantId === undefined
        ? this.db.prepare('SELECT * FROM user_locks WHERE locked = 1 ORDER BY locked_at').all()
        : this.db.prepare('SELECT * FROM user_locks WHERE locked = 1 AND tenant_id = ? ORDER BY locked_at').all(filter.tenantId)
    ) as StateRow[];
    return rows.map(toState);
  }
}
