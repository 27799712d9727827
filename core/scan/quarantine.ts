// Quarantine: messages held by a scan verdict, kept with their reasons until an operator or the
// tenant releases or deletes them, or the retention period ends. The sender is told with a short
// non-delivery report that carries a few headers of the original only (never a copy of a virus).
import { DELIVER_QUEUE, deliverJobBody } from '../app/deliver-job.js';
import { NOTICE_IDENTITY } from '../delivery/notice.js';
import { randomUUID } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { Symbol } from '../checks/check.js';
import type { BlobStore, Clock, Envelope, Queue } from '../ports.js';
import type { MessageLog } from '../stores.js';
import type { VerdictKind } from './verdict.js';

export interface QuarantineEntry {
  /** The message id (queue id) of the held message. */
  messageId: string;
  tenantId: string;
  userId: string;
  envelope: Envelope;
  kind: VerdictKind;
  symbols: Symbol[];
  subject: string | null;
  blobKey: string;
  quarantinedAt: number;
}

export interface QuarantineStore {
  /** Idempotent: adding the same message again (a retried scan) keeps one entry. */
  add(entry: QuarantineEntry): Promise<void>;
  get(messageId: string): Promise<QuarantineEntry | undefined>;
  list(filter: { tenantId?: string; limit?: number; before?: number }): Promise<QuarantineEntry[]>;
  remove(messageId: string): Promise<void>;
  /** Entries quarantined before `cutoff` (the store does not delete blobs; purgeQuarantine does). */
  olderThan(cutoff: number, limit: number): Promise<QuarantineEntry[]>;
}

export interface QuarantineDeps {
  quarantine: QuarantineStore;
  blobs: BlobStore;
  queue: Queue;
  log: MessageLog;
  clock: Clock;
}

/** Releases a held message: it goes to delivery as it is, unscanned again; the entry is removed. */
export async function releaseFromQuarantine(deps: QuarantineDeps, messageId: string, by: string): Promise<QuarantineEntry> {
  const entry = await deps.quarantine.get(messageId);
  if (!entry) throw new Error(`message ${messageId} is not in quarantine (released, deleted or expired)`);
  // Logged before the job is queued, so that a log that cannot be written stops the release with
  // nothing queued: the message stays in quarantine, to be released again.
  await deps.log.addEvent(messageId, 'released', { by }, 'queued');
  await deps.queue.send(DELIVER_QUEUE, deliverJobBody(entry.envelope));
  await deps.quarantine.remove(messageId);
  return entry;
}

/** Deletes a held message and its blob. */
export async function deleteFromQuarantine(deps: QuarantineDeps, messageId: string, by: string): Promise<void> {
  const entry = await deps.quarantine.get(messageId);
  if (!entry) throw new Error(`message ${messageId} is not in quarantine (released, deleted or expired)`);
  await deps.blobs.delete(entry.blobKey);
  await deps.quarantine.remove(messageId);
  await deps.log.addEvent(messageId, 'quarantine-deleted', { by });
}

/** Deletes entries (and blobs) older than the retention period; returns how many. */
export async function purgeQuarantine(deps: Pick<QuarantineDeps, 'quarantine' | 'blobs' | 'log' | 'clock'>, retentionDays: number): Promise<number> {
  const cutoff = deps.clock.now() - retentionDays * 86_400_000;
  let purged = 0;
  for (;;) {
    const batch = await deps.quarantine.olderThan(cutoff, 100);
    if (batch.length === 0) return purged;
    for (const entry of batch) {
      await deps.blobs.delete(entry.blobKey);
      await deps.quarantine.remove(entry.messageId);
      await deps.log.addEvent(entry.messageId, 'quarantine-expired', { retentionDays });
      purged += 1;
    }
  }
}

const REASON_TEXT: Record<string, string> = {
  VIRUS_FOUND: 'a virus was found',
  ATTACHMENT_HASH_BLOCKED: 'an attachment is on the blocklist',
  SPAM_SCORE: 'it was classified as spam',
  GTUBE: 'it contains the spam test pattern (GTUBE)',
  FUZZY_SPAM_MATCH: 'its text matches known spam',
  BULK_CAMPAIGN: 'the same text is being sent by many senders (bulk campaign)',
  MIME_TOO_DEEP: 'its MIME structure is nested too deeply',
  MIME_TOO_MANY_PARTS: 'it has too many MIME parts',
  FROM_COUNT: 'it does not have exactly one From header',
  MIME_PARSE_ERROR: 'it could not be parsed',
};

/** One line a reason, naming virus signatures but never quoting content. */
export function describeReasons(symbols: Symbol[]): string[] {
  const lines = new Set<string>();
  for (const item of symbols) {
    const text = REASON_TEXT[item.name];
    if (!text) continue;
    const signature =
      item.name === 'VIRUS_FOUND' && typeof item.evidence === 'object' && typeof item.evidence.signature === 'string'
        ? ` (${item.evidence.signature})`
        : '';
    lines.add(`${text}${signature}`);
  }
  return [...lines];
}

export interface HeldReportInput {
  envelope: Envelope;
  symbols: Symbol[];
  /** The original's headers worth quoting; nothing else of it is included. */
  original: { subject: string | null; date?: string; messageIdHeader?: string };
  hostname: string;
  at: number;
}

/** Composes the "message held" report to the envelope sender (null sender, Auto-Submitted). */
export async function composeHeldReport(input: HeldReportInput): Promise<Buffer> {
  const { envelope, hostname } = input;
  const reasons = describeReasons(input.symbols);
  const text = [
    `Your message was not delivered: it is held in quarantine by ${hostname}.`,
    '',
    'Why:',
    ...(reasons.length > 0 ? reasons.map((line) => `  - ${line}`) : ['  - it failed the content checks']),
    '',
    'The message:',
    `  Queue id:   ${envelope.messageId}`,
    `  Sent at:    ${new Date(envelope.receivedAt).toUTCString()}`,
    `  Recipients: ${envelope.rcptTo.join(', ')}`,
    ...(input.original.subject !== null ? [`  Subject:    ${input.original.subject.replace(/[\r\n]+/g, ' ')}`] : []),
    ...(input.original.messageIdHeader ? [`  Message-ID: ${input.original.messageIdHeader}`] : []),
    '',
    'If you believe this is a mistake, contact your mail administrator with the queue id above;',
    'they can release the message. Do not send it again unchanged: it would be held again.',
  ].join('\r\n');
  const composer = new MailComposer({
    from: { name: 'Mail Delivery System', address: `MAILER-DAEMON@${hostname}` },
    to: envelope.mailFrom,
    subject: 'Message held: not delivered',
    date: new Date(input.at),
    messageId: `<${randomUUID()}@${hostname}>`,
    headers: { 'Auto-Submitted': 'auto-replied', 'X-Outpost-Queue-Id': envelope.messageId },
    text,
  });
  return composer.compile().build();
}

/**
 * Stores and queues the report like any outgoing message, with the null sender so that it can
 * never bounce back. No report for a message that itself had the null sender.
 */
export async function sendHeldReport(
  deps: { blobs: BlobStore; queue: Queue },
  input: HeldReportInput,
): Promise<Envelope | undefined> {
  const { envelope } = input;
  if (envelope.mailFrom === '') return undefined;
  const raw = await composeHeldReport(input);
  const messageId = `${envelope.messageId}-held`;
  const report: Envelope = {
    messageId,
    tenantId: envelope.tenantId,
    userId: envelope.userId,
    // Written by the relay, not by the user: a notice (never tenant-signed, never held with the user's mail).
    identity: NOTICE_IDENTITY,
    mailFrom: '',
    rcptTo: [envelope.mailFrom],
    blobKey: `reports/${messageId}.eml`,
    size: raw.length,
    receivedAt: input.at,
    clientIp: '127.0.0.1',
    helo: input.hostname,
  };
  await deps.blobs.put(report.blobKey, raw);
  await deps.queue.send(DELIVER_QUEUE, deliverJobBody(report));
  return report;
}
