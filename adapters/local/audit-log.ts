// The audit log in SQLite: one append-only table, read newest first.
import type { AuditAction, AuditEntry, AuditLog } from '../../core/audit.js';
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import type { Db } from './sqlite.js';

interface AuditRow {
  id: number;
  at: number;
  tenant_id: string | null;
  actor: string;
  action: string;
  target: string;
  detail: string;
}

function parseDetail(text: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(text);
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}

const toEntry = (row: AuditRow): AuditEntry => ({
  id: row.id,
  at: row.at,
  tenantId: row.tenant_id,
  actor: row.actor,
  // Written only by `record` with an AuditAction.
  action: row.action as AuditAction,
  target: row.target,
  detail: parseDetail(row.detail),
});

export class SqliteAuditLog implements AuditLog {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  async record(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    this.db
      .prepare('INSERT INTO audit_events (at, tenant_id, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)')
      .run(this.clock.now(), entry.tenantId, entry.actor, entry.action, entry.target, JSON.stringify(entry.detail));
  }

  async list(query: { tenantId?: string; beforeId?: number; limit: number }): Promise<AuditEntry[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM audit_events WHERE (@tenantId IS NULL OR tenant_id = @tenantId) AND (@beforeId IS NULL OR id < @beforeId)
         ORDER BY id DESC LIMIT @limit`,
      )
      .all({ tenantId: query.tenantId ?? null, beforeId: query.beforeId ?? null, limit: query.limit }) as AuditRow[];
    return rows.map(toEntry);
  }
}
