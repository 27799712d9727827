// Suppression lists in SQLite, one row per (tenant, address). Expired rows are ignored on read
// and overwritten by the next add; they are kept so that the history is not lost silently.
import { normaliseSuppressedAddress, type SuppressionEntry, type SuppressionList, type SuppressionSource } from '../../core/suppression.js';
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import type { Db } from './sqlite.js';

interface Row {
  tenant_id: string;
  address: string;
  source: SuppressionSource;
  reason: string;
  created_at: number;
  expires_at: number | null;
}

const toEntry = (row: Row): SuppressionEntry => ({
  tenantId: row.tenant_id,
  address: row.address,
  source: row.source,
  reason: row.reason,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
});

export class SqliteSuppressionList implements SuppressionList {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  async add(entry: { tenantId: string; address: string; source: SuppressionSource; reason: string; expiresAt?: number | null }): Promise<SuppressionEntry> {
    const row: Row = {
      tenant_id: entry.tenantId,
      address: normaliseSuppressedAddress(entry.address),
      source: entry.source,
      reason: entry.reason,
      created_at: this.clock.now(),
      expires_at: entry.expiresAt ?? null,
    };
    const existing = this.db.prepare('SELECT * FROM suppressions WHERE tenant_id = ? AND address = ?').get(row.tenant_id, row.address) as Row | undefined;
    // A manual entry without expiry is an operator decision: an automatic bounce must not shorten it.
    if (existing && existing.source === 'manual' && existing.expires_at === null && entry.source === 'bounce') return toEntry(existing);
    this.db
      .prepare(
        `INSERT INTO suppressions (tenant_id, address, source, reason, created_at, expires_at)
         VALUES (@tenant_id, @address, @source, @reason, @created_at, @expires_at)
         ON CONFLICT (tenant_id, address) DO UPDATE SET source = excluded.source, reason = excluded.reason,
           created_at = excluded.created_at, expires_at = excluded.expires_at`,
      )
      .run(row);
    return toEntry(row);
  }

  async remove(tenantId: string, address: string): Promise<boolean> {
    const result = this.db.prepare('DELETE FROM suppressions WHERE tenant_id = ? AND address = ?').run(tenantId, normaliseSuppressedAddress(address));
    return result.changes > 0;
  }

  async list(tenantId: string, now: number): Promise<SuppressionEntry[]> {
    const rows = this.db
      .prepare('SELECT * FROM suppressions WHERE tenant_id = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at DESC, address')
      .all(tenantId, now) as Row[];
    return rows.map(toEntry);
  }

  async purgeExpired(now: number): Promise<number> {
    return this.db.prepare('DELETE FROM suppressions WHERE expires_at IS NOT NULL AND expires_at <= ?').run(now).changes;
  }

  /** Whether the tenant's list holds any row at all, expired ones included (one probe of the primary key). */
  async hasEntries(tenantId: string): Promise<boolean> {
    const row = this.db.prepare('SELECT EXISTS (SELECT 1 FROM suppressions WHERE tenant_id = ?) AS found').get(tenantId) as { found: number };
    return row.found === 1;
  }

  async find(tenantId: string, address: string, now: number): Promise<SuppressionEntry | undefined> {
    let normalised: string;
    try {
      normalised = normaliseSuppressedAddress(address);
    } catch {
      return undefined; // not an address: other RCPT checks refuse it
    }
    const row = this.db
      .prepare('SELECT * FROM suppressions WHERE tenant_id = ? AND address = ? AND (expires_at IS NULL OR expires_at > ?)')
      .get(tenantId, normalised, now) as Row | undefined;
    return row && toEntry(row);
  }
}
