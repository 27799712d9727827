// Sending statistics over the SQLite message log (tables `messages` and `message_events`, created
// by the schema migrations in migrations.ts).
import {
  bucketStart,
  emptyPoints,
  NOTICE_EVENT_KEYS,
  refusalReason,
  REFUSED_STATUSES,
  type MessageStats,
  type UserVolume,
  type VolumePoint,
  type VolumeQuery,
} from '../../core/api/stats.js';
import type { MessageStatus } from '../../core/stores.js';
import type { Db } from './sqlite.js';

interface Row {
  id: string;
  status: MessageStatus;
  received_at: number;
  recipients: number;
}

/** Mail the user sent, not Outpost's reports and forwarded bounces to the user. */
const SENT_BY_USER = `NOT EXISTS (
  SELECT 1 FROM message_events e WHERE e.message_id = messages.id AND e.event = 'queued'
    AND (${NOTICE_EVENT_KEYS.map((key) => `json_extract(e.detail, '$.${key}') IS NOT NULL`).join(' OR ')}))`;

export class SqliteMessageStats implements MessageStats {
  constructor(private readonly db: Db) {}

  async recordRefusal(refusal: { tenantId: string; userId: string; reason: string; at: number }): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO smtp_refusals (tenant_id, user_id, hour, reason, count) VALUES (?, ?, ?, ?, 1)
         ON CONFLICT (tenant_id, user_id, hour, reason) DO UPDATE SET count = count + 1`,
      )
      .run(refusal.tenantId, refusal.userId, bucketStart(refusal.at, 'hour'), refusal.reason);
  }

  async purgeOlderThan(cutoff: number): Promise<number> {
    return this.db.prepare('DELETE FROM smtp_refusals WHERE hour < ?').run(bucketStart(cutoff, 'hour')).changes;
  }

  async volume(query: VolumeQuery): Promise<VolumePoint[]> {
    const points = emptyPoints(query.from, query.to, query.bucket);
    const byStart = new Map(points.map((point) => [point.start, point]));
    const rows = this.db
      .prepare(
        `SELECT id, status, received_at, json_array_length(rcpt_to) AS recipients FROM messages
         WHERE tenant_id = @tenantId AND (@userId IS NULL OR user_id = @userId)
           AND received_at >= @from AND received_at < @to AND ${SENT_BY_USER}`,
      )
      .all({ tenantId: query.tenantId, userId: query.userId ?? null, from: query.from, to: query.to }) as Row[];
    const events = this.db.prepare('SELECT detail FROM message_events WHERE message_id = ? ORDER BY seq');
    for (const row of rows) {
      const point = byStart.get(bucketStart(row.received_at, query.bucket));
      if (!point) continue;
      point.messages += 1;
      point.recipients += row.recipients;
      if (row.status === 'delivered' || row.status === 'partially-delivered') point.sent += 1;
      if (REFUSED_STATUSES.has(row.status)) {
        const details = (events.all(row.id) as Array<{ detail: string }>).map((item) => ({ detail: parseDetail(item.detail) }));
        const reason = refusalReason(row.status, details);
        point.refused[reason] = (point.refused[reason] ?? 0) + 1;
      }
    }
    const refusals = this.db
      .prepare(
        `SELECT hour, reason, SUM(count) AS count FROM smtp_refusals
         WHERE tenant_id = @tenantId AND (@userId IS NULL OR user_id = @userId) AND hour >= @from AND hour < @to
         GROUP BY hour, reason`,
      )
      .all({ tenantId: query.tenantId, userId: query.userId ?? null, from: bucketStart(query.from, 'hour'), to: query.to }) as Array<{ hour: number; reason: string; count: number }>;
    for (const refusal of refusals) {
      const point = byStart.get(bucketStart(refusal.hour, query.bucket));
      if (point) point.refused[refusal.reason] = (point.refused[refusal.reason] ?? 0) + refusal.count;
    }
    return points;
  }

  async volumeByUser(tenantId: string, from: number, to: number): Promise<Map<string, UserVolume>> {
    const rows = this.db
      .prepare(
        `SELECT user_id, COUNT(*) AS messages, COALESCE(SUM(json_array_length(rcpt_to)), 0) AS recipients FROM messages
         WHERE tenant_id = ? AND user_id IS NOT NULL AND received_at >= ? AND received_at < ? AND ${SENT_BY_USER}
         GROUP BY user_id`,
      )
      .all(tenantId, from, to) as Array<{ user_id: string; messages: number; recipients: number }>;
    return new Map(rows.map((row) => [row.user_id, { messages: row.messages, recipients: row.recipients }]));
  }
}

function parseDetail(text: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(text);
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}
