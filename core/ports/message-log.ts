// The message log: one record per accepted message with the events of its life (received,
// scanned, delivered, deferred, bounced, ...). DynamoDB on AWS (adapters/aws/dynamodb-message-log.ts),
// SQLite on the single node (adapters/local/message-log.ts). Contract: test/core/message-log.contract.ts.
//
// Promises every implementation keeps:
// - `get` is strongly consistent (it backs idempotency: "was this attempt already recorded?");
// - events come back in the order they were added; an event given a status moves the message's
//   status with it, except 'queued' over a final status (statusAfterEvent);
// - search is newest first, in pages with an opaque cursor that visits each match exactly once;
//   a cursor the store did not issue is refused with InvalidInputError; recipients compare
//   case-insensitively;
// - `purgeOlderThan` removes messages with their events;
// - `eventCounts` counts every event recorded since the log began, by name (for the gauges),
//   without the caller reading the events; purging the log does not lower them;
// - `findByProviderId` finds the message a provider id (SES message id) was recorded for with
//   `recordProviderIds`, so that provider events (bounces, complaints) reach our record.

export const MESSAGE_STATUSES = ['received', 'queued', 'scanning', 'deferred', 'delivered', 'partially-delivered', 'bounced', 'quarantined', 'refused', 'expired', 'held-locked', 'held-manual', 'purged'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/** Where a message's life ends; later events may still move it to another of these (delivered, then bounced). */
export const FINAL_STATUSES: ReadonlySet<MessageStatus> = new Set<MessageStatus>(['delivered', 'bounced', 'expired', 'purged', 'refused']);

/**
 * The status a message has after an event that asks for `requested`. A 'queued' never moves a
 * message back from a final status: a stage writes it after handing the job on (a scan, a
 * release, a notice), and the next stage may already have delivered the message and said so.
 */
export function statusAfterEvent(current: MessageStatus, requested: MessageStatus | undefined): MessageStatus {
  if (requested === undefined) return current;
  return requested === 'queued' && FINAL_STATUSES.has(current) ? current : requested;
}

export interface MessageRecord {
  id: string;
  tenantId: string | null;
  userId: string | null;
  identity: string | null;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  subject: string | null;
  status: MessageStatus;
  receivedAt: number;
  updatedAt: number;
}

export interface MessageEvent {
  at: number;
  /** received, queued, scanned, delivered, deferred, bounced, quarantined, released, dsn-sent, ... */
  event: string;
  detail: Record<string, unknown>;
}

export interface MessageSearch {
  tenantId?: string;
  userId?: string;
  sender?: string;
  recipient?: string;
  status?: MessageStatus;
  from?: number;
  to?: number;
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface MessageLog {
  create(record: Omit<MessageRecord, 'updatedAt'>): Promise<void>;
  /** Appends an event; `status`, when given, becomes the message's status. */
  addEvent(messageId: string, event: string, detail?: Record<string, unknown>, status?: MessageStatus): Promise<void>;
  get(messageId: string): Promise<{ message: MessageRecord; events: MessageEvent[] } | undefined>;
  search(query: MessageSearch): Promise<{ items: MessageRecord[]; nextCursor: string | null }>;
  /** Removes messages received before `cutoff` (ms) with their events; returns how many. */
  purgeOlderThan(cutoff: number): Promise<number>;
  /** Events recorded since the log began, by event name (purging does not lower the counts). */
  eventCounts(): Promise<Record<string, number>>;
  /** Remembers that a provider (SES) took the message under these ids of its own. */
  recordProviderIds(messageId: string, providerIds: string[]): Promise<void>;
  /** Our message id for a provider's id (`recordProviderIds`), if it is known; strongly consistent. */
  findByProviderId(providerId: string): Promise<string | undefined>;
}
