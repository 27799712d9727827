// Held mail on SQLite: one row a held queue job (its body kept verbatim, the message itself stays
// in the blob store), and one row a sender put on hold by hand. A claim is taken in one IMMEDIATE
// transaction, so two releases (or a release and a purge) at once split the rows between them.
import type { HeldMessage, HeldSummary, HoldReason, HoldStore, HeldStage, SenderHold } from '../../core/holds.js';
import { immediate, type Db } from './sqlite.js';

interface HeldRow {
  id: string;
  message_id: string;
  tenant_id: string;
  user_id: string;
  identity: string;
  stage: string;
  body: string;
  blob_key: string;
  reason: string;
  held_at: number;
}

interface SenderHoldRow {
  user_id: string;
  tenant_id: string;
  identity: string;
  held_by: string;
  at: number;
}

const STAGES: readonly HeldStage[] = ['scan', 'deliver'];
const REASONS: readonly HoldReason[] = ['locked', 'manual'];

function toHeld(row: HeldRow): HeldMessage {
  // Written only by `add`; an unknown value (a hand-edited row) falls back to what is safe to re-queue.
  const stage = STAGES.find((item) => item === row.stage) ?? 'scan';
  const reason = REASONS.find((item) => item === row.reason) ?? 'manual';
  return {
    id: row.id,
    messageId: row.message_id,
    tenantId: row.tenant_id,
    userId: row.user_id,
    identity: row.identity,
    stage,
    body: row.body,
    blobKey: row.blob_key,
    reason,
    heldAt: row.held_at,
  };
}

export class SqliteHoldStore implements HoldStore {
  constructor(private readonly db: Db) {}

  async add(held: HeldMessage): Promise<boolean> {
    const result = this.db
      .prepare(
        `INSERT OR IGNORE INTO held_messages (id, message_id, tenant_id, user_id, identity, stage, body, blob_key, reason, held_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(held.id, held.messageId, held.tenantId, held.userId, held.identity, held.stage, held.body, held.blobKey, held.reason, held.heldAt);
    return result.changes === 1;
  }

  async list(filter: { userId?: string; tenantId?: string; limit?: number }): Promise<HeldMessage[]> {
    const limit = filter.limit ?? 1000;
    const rows = (
      filter.userId !== undefined
        ? this.db.prepare('SELECT * FROM held_messages WHERE user_id = ? ORDER BY held_at, id LIMIT ?').all(filter.userId, limit)
        : filter.tenantId !== undefined
          ? this.db.prepare('SELECT * FROM held_messages WHERE tenant_id = ? ORDER BY held_at, id LIMIT ?').all(filter.tenantId, limit)
          : this.db.prepare('SELECT * FROM held_messages ORDER BY held_at, id LIMIT ?').all(limit)
    ) as HeldRow[];
    return rows.map(toHeld);
  }

  async heldSenders(): Promise<string[]> {
    return (this.db.prepare('SELECT DISTINCT user_id FROM held_messages').all() as Array<{ user_id: string }>).map((row) => row.user_id);
  }

  async claim(userId: string, claim: string, now: number, staleBefore: number): Promise<HeldMessage[]> {
    return immediate(this.db, () => {
      this.db
        .prepare('UPDATE held_messages SET claim = ?, claimed_at = ? WHERE user_id = ? AND (claim IS NULL OR claimed_at < ?)')
        .run(claim, now, userId, staleBefore);
      return (this.db.prepare('SELECT * FROM held_messages WHERE claim = ? ORDER BY held_at, id').all(claim) as HeldRow[]).map(toHeld);
    });
  }

  async remove(id: string, claim: string): Promise<void> {
    this.db.prepare('DELETE FROM held_messages WHERE id = ? AND claim = ?').run(id, claim);
  }

  async putSenderHold(hold: SenderHold): Promise<void> {
    this.db
      .prepare('INSERT OR IGNORE INTO sender_holds (user_id, tenant_id, identity, held_by, at) VALUES (?, ?, ?, ?, ?)')
      .run(hold.userId, hold.tenantId, hold.identity, hold.by, hold.at);
  }

  async senderHold(userId: string): Promise<SenderHold | undefined> {
    const row = this.db.prepare('SELECT * FROM sender_holds WHERE user_id = ?').get(userId) as SenderHoldRow | undefined;
    return row ? { userId: row.user_id, tenantId: row.tenant_id, identity: row.identity, by: row.held_by, at: row.at } : undefined;
  }

  async removeSenderHold(userId: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM sender_holds WHERE user_id = ?').run(userId).changes > 0;
  }

  async summary(filter: { tenantId?: string; userId?: string; overdueBefore: number }): Promise<HeldSummary[]> {
    const where = filter.userId !== undefined ? 'WHERE user_id = @userId' : filter.tenantId !== undefined ? 'WHERE tenant_id = @tenantId' : '';
    const rows = this.db
      .prepare(
        `SELECT tenant_id, user_id, MAX(identity) AS identity, reason, COUNT(*) AS count, MIN(held_at) AS oldest_at,
                SUM(CASE WHEN held_at < @overdueBefore THEN 1 ELSE 0 END) AS overdue
         FROM held_messages ${where} GROUP BY tenant_id, user_id, reason ORDER BY oldest_at`,
      )
      .all({ overdueBefore: filter.overdueBefore, userId: filter.userId ?? null, tenantId: filter.tenantId ?? null }) as Array<{
      tenant_id: string;
      user_id: string;
      identity: string;
      reason: string;
      count: number;
      oldest_at: number;
      overdue: number;
    }>;
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      userId: row.user_id,
      identity: row.identity,
      reason: REASONS.find((item) => item === row.reason) ?? 'manual',
      count: row.count,
      oldestAt: row.oldest_at,
      overdue: row.overdue,
    }));
  }
}
