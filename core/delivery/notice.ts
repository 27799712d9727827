// Mail Outpost sends on a user's behalf to that user: a DSN (deliver stage) or a bounce
// forwarded to the original sender (bounce stage). Both go out with the null sender, are
// attributed to the user's tenant and user so they find them in their message log, and are
// queued at least once: the 'queued' event is written after the queue send, so a receive that
// died half-way queues again, and one that got through is never repeated. Delivery may log
// 'delivered' before that event: its 'queued' does not undo it (statusAfterEvent).
import type { NoticeEventDetail } from '../api/stats.js';
import type { BlobStore, Clock, Envelope } from '../ports.js';
import type { MessageLog } from '../stores.js';

/**
 * The identity of every notice: mail this relay writes itself. It is never DKIM-signed with a
 * tenant's key, whatever its From says (a forwarded bounce carries content an outsider wrote).
 */
export const NOTICE_IDENTITY = 'MAILER-DAEMON';

/** True for mail the relay wrote itself (null sender, notice identity), not mail a user submitted. */
export function isRelayNotice(envelope: Pick<Envelope, 'identity' | 'mailFrom'>): boolean {
  return envelope.identity === NOTICE_IDENTITY && envelope.mailFrom === '';
}

export interface Notice {
  /** Stable for the event it reports (e.g. message id + attempt), so that a repeat is detected. */
  messageId: string;
  about: { tenantId: string; userId: string };
  to: string;
  blobKey: string;
  subject: string;
  clientIp: string;
  helo: string;
  /** Marks the message log entry as a notice, not mail the user sent (statistics). */
  detail: NoticeEventDetail;
  /** Builds the message; not called when the notice was already queued. */
  compose(): Buffer;
}

export interface NoticeDeps {
  blobs: BlobStore;
  log: MessageLog;
  clock: Clock;
  /** Queues the envelope for delivery. */
  enqueue(envelope: Envelope): Promise<void>;
}

export async function queueNotice(deps: NoticeDeps, notice: Notice): Promise<void> {
  const earlier = await deps.log.get(notice.messageId);
  if (earlier?.events.some((event) => event.event === 'queued')) return;
  const now = deps.clock.now();
  const raw = notice.compose();
  const envelope: Envelope = {
    messageId: notice.messageId,
    tenantId: notice.about.tenantId,
    userId: notice.about.userId,
    identity: NOTICE_IDENTITY,
    // A notice must never cause another one: null sender.
    mailFrom: '',
    rcptTo: [notice.to],
    blobKey: notice.blobKey,
    size: raw.length,
    receivedAt: now,
    clientIp: notice.clientIp,
    helo: notice.helo,
  };
  await deps.blobs.put(envelope.blobKey, raw);
  if (!earlier) {
    await deps.log.create({
      id: envelope.messageId,
      tenantId: envelope.tenantId,
      userId: envelope.userId,
      identity: envelope.identity,
      mailFrom: '',
      rcptTo: envelope.rcptTo,
      size: envelope.size,
      subject: notice.subject,
      status: 'received',
      receivedAt: now,
    });
  }
  await deps.enqueue(envelope);
  await deps.log.addEvent(envelope.messageId, 'queued', notice.detail, 'queued');
}
