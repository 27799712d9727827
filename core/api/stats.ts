// Sending statistics of a tenant or one of its users, derived from the message log: what was
// accepted, what was delivered, and what was refused (quarantined, bounced, expired, refused)
// and why, per hour or per day (UTC).
import type { MessageEvent, MessageStatus } from '../stores.js';
import type { StatsBucket, VolumePoint } from '../ports/statistics.js';
export type { MessageStats, StatsBucket, UserVolume, VolumePoint, VolumeQuery } from '../ports/statistics.js';

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
