// Handling of one bounce the listener accepted (queue 'bounce', body: the Envelope of the
// bounce): parse, attribute to our original message and its user, scan, record
// 'bounce-received' in that message's log, react to each hard-bounced address that was a
// recipient of that message (suppression, invalid-recipient count), and forward the bounce to the
// original sender inside a notice this relay writes. A bounce is an outsider's word: one that
// cannot be attributed changes nothing, one that fails the scan is dropped (and is never charged
// to the user it names), and no bounce is ever signed as the tenant.
// Queues deliver at least once: a bounce already recorded is not counted or forwarded again. The
// bounce file is removed once handled; a redelivered record whose file is gone is done.
import { batvStrip } from '../batv.js';
import { composeForwardedBounce } from '../bounce/forward.js';
import { parseBounce, type BounceReport } from '../bounce/parse.js';
import { scanBounce, type BounceScanDeps } from '../bounce/scan.js';
import type { MetricRecorder } from '../metrics.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from '../ports.js';
import { verdictReasons } from '../scan/verdict.js';
import type { MessageLog, MessageRecord } from '../stores.js';
import type { SuppressionList } from '../suppression.js';
import { queueNotice, type NoticeDeps } from '../delivery/notice.js';
import { DELIVER_QUEUE, deliverJobBody } from './deliver-job.js';
import { makeHardBounceReaction } from './hard-bounce.js';

export const BOUNCE_QUEUE = 'bounce';
const DAY_MS = 86_400_000;
/** How far back a bounce without our queue id is matched by sender and recipient. */
const ATTRIBUTION_WINDOW_MS = 14 * DAY_MS;

export interface BounceHandlingDeps {
  blobs: BlobStore;
  queue: Queue;
  log: MessageLog;
  suppression: SuppressionList;
  logger: Logger;
  clock: Clock;
  /** Counts a hard-bounced recipient against the user (invalid-recipient limit, automatic lock). */
  onHardBounce(userId: string, address: string): Promise<void>;
  /** Whether the bounce goes on to the original sender (tenant or user preference). */
  shouldForward(original: { tenantId: string; userId: string }): Promise<boolean>;
  /** Days a hard-bounced address stays suppressed (default 30). */
  suppressionDays?: number;
  /** This relay's name: forwarded bounces come from its postmaster. */
  hostname: string;
  /** The engines every bounce is scanned with before it changes anything. */
  scanning: BounceScanDeps;
  /** Recipients read from one bounce (config bounces.maxRecipients). */
  maxRecipients: number;
  metrics?: MetricRecorder;
}

export const BOUNCES_DROPPED_METRIC = 'outpost_bounces_dropped_total';
export const BOUNCES_DROPPED_HELP = 'Bounces dropped by the bounce stage (failed the virus or spam scan), by reason.';

const sameAddress = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * Finds our original message. The queue id in the returned headers is only a hint (a bounce's
 * content is the remote side's word): it counts only if that message was sent by the address the
 * bounce came back to. Without it, the newest message from that sender to a bounced recipient.
 */
async function attribute(log: MessageLog, report: BounceReport, returnPath: string, tenantId: string, now: number): Promise<MessageRecord | undefined> {
  if (report.originalMessageId) {
    const found = await log.get(report.originalMessageId);
    const sameTenant = !tenantId || found?.message.tenantId === tenantId;
    if (found && sameTenant && sameAddress(found.message.mailFrom, returnPath)) return found.message;
  }
  for (const recipient of report.recipients) {
    const { items } = await log.search({
      ...(tenantId ? { tenantId } : {}),
      sender: returnPath,
      recipient: recipient.address,
      from: now - ATTRIBUTION_WINDOW_MS,
      limit: 1,
    });
    if (items[0]) return items[0];
  }
  return undefined;
}

export function makeBounceHandling(deps: BounceHandlingDeps): (bounce: Envelope) => Promise<void> {
  const { blobs, queue, log, suppression, logger, clock } = deps;
  const hardBounce = makeHardBounceReaction({
    suppression,
    clock,
    countInvalidRecipient: (userId, address) => deps.onHardBounce(userId, address),
    ...(deps.suppressionDays === undefined ? {} : { suppressionDays: deps.suppressionDays }),
  });

  const notices: NoticeDeps = { blobs, log, clock, enqueue: (envelope) => queue.send(DELIVER_QUEUE, deliverJobBody(envelope)).then(() => undefined) };

  /** Forwards the bounce to the original sender inside our own notice; queued at most once per bounce. */
  async function forward(bounce: Envelope, raw: Buffer, original: MessageRecord & { tenantId: string; userId: string }, returnPath: string): Promise<string> {
    const messageId = `${bounce.messageId}-fwd`;
    await queueNotice(notices, {
      messageId,
      about: { tenantId: original.tenantId, userId: original.userId },
      to: returnPath,
      blobKey: `bounce-forward/${messageId}`,
      subject: 'Delivery report about your message',
      clientIp: bounce.clientIp,
      helo: bounce.helo,
      detail: { bounceFor: original.id },
      compose: () => composeForwardedBounce({ hostname: deps.hostname, to: returnPath, originalId: original.id, bounce: raw, now: clock.now() }),
    });
    return messageId;
  }

  /** The bounce file is not kept once the bounce is handled, whatever the outcome. */
  async function discard(bounce: Envelope): Promise<void> {
    await blobs.delete(bounce.blobKey);
  }

  return async function handleBounce(bounce: Envelope): Promise<void> {
    const now = clock.now();
    if (!(await blobs.exists(bounce.blobKey))) {
      // Files are removed once handled: this is a redelivered record, or the file was removed by hand.
      logger.warn('bounce file gone; the record is dropped', { bounceId: bounce.messageId, blobKey: bounce.blobKey });
      return;
    }
    const raw = await blobs.get(bounce.blobKey);
    const report = parseBounce(raw, { maxRecipients: deps.maxRecipients });
    const returnPath = batvStrip(bounce.rcptTo[0] ?? '');
    const found = await attribute(log, report, returnPath, bounce.tenantId, now);
    const original = found?.tenantId && found.userId ? { ...found, tenantId: found.tenantId, userId: found.userId } : undefined;
    if (!original) {
      logger.warn('bounce not attributed to a message we sent; nothing changed', {
        bounceId: bounce.messageId,
        returnPath,
        clientIp: bounce.clientIp,
        format: report.format,
        recipients: report.recipients.length,
      });
      return discard(bounce);
    }
    const history = await log.get(original.id);
    if (history?.events.some((event) => event.event === 'bounce-received' && event.detail.bounceId === bounce.messageId)) {
      logger.info('bounce already handled', { bounceId: bounce.messageId, messageId: original.id });
      return discard(bounce);
    }

    // Throws when an engine cannot answer: the record is retried, the bounce never acted on unscanned.
    const verdict = await scanBounce(raw, { bounceId: bounce.messageId, clientIp: bounce.clientIp, helo: bounce.helo, returnPath }, deps.scanning);
    if (verdict.action !== 'deliver') {
      // Dropped, and charged to nobody: an outsider must not lock a user by mailing a virus here.
      deps.metrics?.inc('outpost_bounces_dropped_total', { reason: verdict.kind });
      logger.warn('bounce dropped', {
        bounceId: bounce.messageId,
        messageId: original.id,
        clientIp: bounce.clientIp,
        reason: verdict.kind,
        symbols: verdictReasons(verdict),
      });
      return discard(bounce);
    }

    // Only recipients of the original message: a report naming others is not believed about them.
    const sentTo = new Set(original.rcptTo.map((address) => address.toLowerCase()));
    const ours = report.recipients.filter((recipient) => sentTo.has(recipient.address.toLowerCase()));
    const foreign = report.recipients.filter((recipient) => !sentTo.has(recipient.address.toLowerCase()));
    const ignored = foreign.length + (report.ignoredRecipients ?? 0);
    if (ignored > 0) {
      logger.warn('bounce names recipients the original message did not have; they are ignored', {
        bounceId: bounce.messageId,
        messageId: original.id,
        foreign: foreign.length,
        examples: foreign.slice(0, 5).map((recipient) => recipient.address),
        notRead: report.ignoredRecipients ?? 0,
      });
    }
    const hard = ours.filter((recipient) => recipient.hard);
    const { tenantId, userId } = original;
    for (const recipient of hard) {
      await hardBounce({ tenantId, userId, recipient: recipient.address, reason: [recipient.status, recipient.diagnostic].filter(Boolean).join(' ').slice(0, 300) });
    }

    let forwardedAs: string | undefined;
    if (returnPath && (await deps.shouldForward({ tenantId, userId }))) {
      forwardedAs = await forward(bounce, raw, original, returnPath);
    }
    const summary = {
      bounceId: bounce.messageId,
      format: report.format,
      recipients: ours.map(({ address, status, action, hard: isHard, diagnostic }) => ({ address, status, action, hard: isHard, diagnostic })),
      ...(ignored > 0 ? { ignoredRecipients: ignored } : {}),
    };
    // Recorded last: a crash before this line repeats the steps above (all idempotent but the
    // counter), rather than losing them.
    await log.addEvent(original.id, 'bounce-received', { ...summary, ...(forwardedAs ? { forwardedAs } : {}) });
    await discard(bounce);
    logger.info('bounce handled', {
      bounceId: bounce.messageId,
      messageId: original.id,
      hard: hard.length,
      soft: ours.length - hard.length,
      forwarded: forwardedAs !== undefined,
    });
  };
}
