// Sending statistics per tenant and user, per hour or day (UTC): DynamoDB on AWS
// (adapters/aws/dynamodb-message-stats.ts), SQLite on the single node (adapters/local/stats-store.ts).
// Contract: test/core/message-stats.contract.ts.
//
// Promises every implementation keeps:
// - the figures follow the message log: a message counts once in the bucket it was received in,
//   its recipients as mailsPerHour counts them, and moves between "sent" and the refusal reasons
//   when its status changes again;
// - Outpost's own notices to a user (DSNs, forwarded bounces) are left out, the user's own
//   null-sender mail is not;
// - session refusals are counted by reason, per user, and purged by age;
// - `volume` gives one point per bucket, empty buckets included.

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
