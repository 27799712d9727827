// The bounce stage: takes bounces the listener accepted (queue 'bounce', body: the Envelope of
// the bounce) and acts on them: parse, attribute to our original message and its user, record
// 'bounce-received' in that message's log, suppress hard-bounced addresses, count them against
// the user (invalid-recipient limit), and forward the bounce to the original sender when wanted.
// SQS delivers at least once: a bounce already recorded is not counted or forwarded again.
import { batvStrip } from '../../core/batv.js';
import { parseBounce, type BounceReport } from '../../core/bounce/parse.js';
import { errorMessage } from '../../core/log.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from '../../core/ports.js';
import { perRecord, type SqsHandler, type SqsRecord } from '../../core/sqs-event.js';
import type { MessageLog, MessageRecord } from '../../core/stores.js';
import { suppressHardBounce, type SuppressionList } from '../../core/suppression.js';
import { envelopeSchema } from '../../core/envelope.js';
import { deliverJob } from '../deliver/handler.js';
import { queueNotice, type NoticeDeps } from '../../core/delivery/notice.js';

export const BOUNCE_QUEUE = 'bounce';
const DELIVER_QUEUE = 'deliver';
const DAY_MS = 86_400_000;
/** How far back a bounce without our queue id is matched by sender and recipient. */
const ATTRIBUTION_WINDOW_MS = 14 * DAY_MS;

export interface BounceHandlerDeps {
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
}

const bounceBodySchema = envelopeSchema;

function parseEnvelope(body: string): { envelope: Envelope } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error: unknown) {
    return { problem: `body is not JSON: ${errorMessage(error)}` };
  }
  const result = bounceBodySchema.safeParse(json);
  if (!result.success) return { problem: result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') };
  return { envelope: result.data };
}

const sameAddress = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/**
 * Finds our original message. The queue id in the returned headers is only a hint (a bounce's
 * content is the remote side's word): it counts only if that message was sent by the address the
 * bounce came back to. Without it, the newest message from that sender to a bounced recipient.
 */
async function attribute(log: MessageLog, report: BounceReport, returnPath: string, tenantId: string, now: number): Promise<MessageRecord | undefined> {
  if (report.originalMessageId) {
    const found = await log.get(report.originalMessageId);
    if (found && sameAddress(found.message.mailFrom, returnPath)) return found.message;
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

export function makeBounceHandler(deps: BounceHandlerDeps): SqsHandler {
  const { blobs, queue, log, suppression, logger, clock } = deps;

  const notices: NoticeDeps = { blobs, log, clock, enqueue: (envelope) => queue.send(DELIVER_QUEUE, JSON.stringify(deliverJob(envelope))).then(() => undefined) };

  /** Forwards the bounce to the original sender, tag stripped; queued at most once per bounce. */
  async function forward(bounce: Envelope, raw: Buffer, original: MessageRecord, returnPath: string): Promise<string> {
    const messageId = `${bounce.messageId}-fwd`;
    await queueNotice(notices, {
      messageId,
      about: { tenantId: original.tenantId ?? bounce.tenantId, userId: original.userId ?? bounce.userId },
      to: returnPath,
      blobKey: `bounce-forward/${messageId}`,
      subject: 'Forwarded bounce',
      clientIp: bounce.clientIp,
      helo: bounce.helo,
      detail: { bounceFor: original.id },
      compose: () => Buffer.concat([Buffer.from(`X-Outpost-Bounce-For: ${original.id}\r\n`, 'latin1'), raw]),
    });
    return messageId;
  }

  async function handle(record: SqsRecord): Promise<void> {
    const parsed = parseEnvelope(record.body);
    if ('problem' in parsed) {
      // It can never succeed: retrying would only fill the dead-letter queue later.
      logger.error('invalid bounce record dropped', { queueMessageId: record.messageId, problem: parsed.problem });
      return;
    }
    const { envelope: bounce } = parsed;
    const now = clock.now();
    const raw = await blobs.get(bounce.blobKey);
    const report = parseBounce(raw);
    const returnPath = batvStrip(bounce.rcptTo[0] ?? '');
    const original = await attribute(log, report, returnPath, bounce.tenantId, now);
    const hard = report.recipients.filter((recipient) => recipient.hard);
    const summary = {
      bounceId: bounce.messageId,
      format: report.format,
      recipients: report.recipients.map(({ address, status, action, hard: isHard, diagnostic }) => ({ address, status, action, hard: isHard, diagnostic })),
    };

    if (!original) {
      logger.warn('bounce not attributed to a message', { bounceId: bounce.messageId, returnPath, format: report.format, recipients: report.recipients.length });
    } else {
      const history = await log.get(original.id);
      const seen = history?.events.some((event) => event.event === 'bounce-received' && event.detail.bounceId === bounce.messageId) ?? false;
      if (seen) {
        logger.info('bounce already handled', { bounceId: bounce.messageId, messageId: original.id });
        return;
      }
    }

    const tenantId = original?.tenantId ?? (bounce.tenantId || null);
    const userId = original?.userId ?? (bounce.userId || null);
    if (tenantId) {
      for (const recipient of hard) {
        await suppressHardBounce(suppression, {
          tenantId,
          address: recipient.address,
          reason: [recipient.status, recipient.diagnostic].filter(Boolean).join(' ').slice(0, 300),
          now,
          ...(deps.suppressionDays === undefined ? {} : { days: deps.suppressionDays }),
        });
      }
    }
    if (userId) for (const recipient of hard) await deps.onHardBounce(userId, recipient.address);

    let forwardedAs: string | undefined;
    if (original && tenantId && userId && returnPath && (await deps.shouldForward({ tenantId, userId }))) {
      forwardedAs = await forward(bounce, raw, original, returnPath);
    }
    // Recorded last: a crash before this line repeats the steps above (all idempotent but the
    // counter), rather than losing them.
    if (original) await log.addEvent(original.id, 'bounce-received', { ...summary, ...(forwardedAs ? { forwardedAs } : {}) });
    logger.info('bounce handled', {
      bounceId: bounce.messageId,
      messageId: original?.id,
      hard: hard.length,
      soft: report.recipients.length - hard.length,
      forwarded: forwardedAs !== undefined,
    });
  }

  return perRecord(handle, (record, error) => {
    logger.error('bounce handling failed; the queue will retry', { queueMessageId: record.messageId, error: errorMessage(error) });
  });
}
