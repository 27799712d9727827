// Sending statistics of a tenant or one of its users, derived from the message log: what was
// accepted, what was delivered, and what was refused (quarantined, bounced, expired, refused)
// and why, per hour or per day (UTC).
import type { MessageEvent, MessageStatus } from '../stores.js';

export type StatsBucket = 'hour' | 'day';

export interface VolumeQuery {
  tenantId: string;
  userId?: string;
  /** Inclusive, ms since the epoch. */
  from: number;
  /** Exclusive. */
  to: number;
  bucket: StatsBucket;
}

export interface VolumePoint {
  /** Start of the bucket (ms since the epoch, UTC-aligned). */
  start: number;
  /** Messages accepted (queued) in the bucket. */
  messages: number;
  /** Their recipients: what counts against mailsPerHour (a message to N recipients counts N). */
  recipients: number;
  /** Messages delivered to every or some recipient. */
  sent: number;
  /**
   * What was refused, by reason: messages not delivered (symbol name, or the status when no
   * symbol is known) plus refusals during the SMTP session (the refusal's first symbol).
   */
  refused: Record<string, number>;
}

export interface UserVolume {
  messages: number;
  recipients: number;
}

/** The statistics query port (SQLite | DynamoDB). */
export interface MessageStats {
  /** One point per bucket from `from` to `to`, empty buckets included (zeros). */
  volume(query: VolumeQuery): Promise<VolumePoint[]>;
  /** Messages and recipients per user of the tenant within [from, to); users without mail are absent. */
  volumeByUser(tenantId: string, from: number, to: number): Promise<Map<string, UserVolume>>;
  /**
   * Counts a refusal during the SMTP session (rate limit, lock, sender rule, size...): no message
   * exists for it in the message log, yet it is what an outgoing filter refuses most.
   */
  recordRefusal(refusal: { tenantId: string; userId: string; reason: string; at: number }): Promise<void>;
  /** Forgets refusal counts older than `cutoff` (ms). */
  purgeOlderThan(cutoff: number): Promise<number>;
}

/**
 * Keys of the `queued` event detail that mark mail Outpost itself sent on a user's behalf: a
 * non-delivery report to the user (deliver handler: `dsnFor`) and a bounce forwarded to the user
 * (bounce handler: `bounceFor`). They are in the user's message log, but they are not mail the user
 * sent, so statistics leave them out.
 */
export const NOTICE_EVENT_KEYS = ['dsnFor', 'bounceFor'] as const;
export type NoticeEventKey = (typeof NOTICE_EVENT_KEYS)[number];
/** The `queued` event detail of a notice; typed so that a renamed key cannot drift from the statistics. */
export type NoticeEventDetail = Partial<Record<NoticeEventKey, string>>;

export const BUCKET_MS: Record<StatsBucket, number> = { hour: 3_600_000, day: 86_400_000 };

export const REFUSED_STATUSES: ReadonlySet<MessageStatus> = new Set<MessageStatus>(['refused', 'quarantined', 'bounced', 'expired', 'purged']);

export function bucketStart(at: number, bucket: StatsBucket): number {
  return Math.floor(at / BUCKET_MS[bucket]) * BUCKET_MS[bucket];
}

/**
 * Why a message was not delivered: the first symbol named by its latest event that names any
 * (scan verdicts and policy refusals record `symbols`), else the message status.
 */
export function refusalReason(status: MessageStatus, events: Pick<MessageEvent, 'detail'>[]): string {
  for (let index = events.length - 1; index >= 0; index--) {
    const symbols = events[index]?.detail['symbols'];
    if (!Array.isArray(symbols)) continue;
    for (const symbol of symbols) {
      if (typeof symbol === 'object' && symbol !== null) {
        const name = (symbol as { name?: unknown }).name;
        if (typeof name === 'string' && name) return name;
      }
    }
  }
  return status;
}

/** Zero points for every bucket of [from, to). */
export function emptyPoints(from: number, to: number, bucket: StatsBucket): VolumePoint[] {
  const points: VolumePoint[] = [];
  for (let start = bucketStart(from, bucket); start < to; start += BUCKET_MS[bucket]) {
    points.push({ start, messages: 0, recipients: 0, sent: 0, refused: {} });
  }
  return points;
}
