// One delivery attempt of one message: the pending recipients of a deliver job are attempted,
// and each outcome turns into the next step: done, retry later (a new delayed job), or a DSN to
// the sender. The retry job and the DSN are queued before the attempt's outcomes are logged, so a
// crash at any point repeats work (at-least-once) but never loses a message. The entries (the
// deliver Lambda, the MX worker, the single node's poller) read the job and call this.
import type { SmtpLogin } from '../delivery/connection-cache.js';
import { timed, type MetricRecorder } from '../metrics.js';
import type { Config } from '../config.js';
import { deliverEnvelope, type Failed, type PrepareMessage, type RecipientOutcome } from '../delivery/deliver.js';
import { composeDsn } from '../delivery/dsn.js';
import { errorMessage } from '../log.js';
import type { BlobStore, Clock, Envelope, Logger, Queue, Resolver } from '../ports.js';
import type { MessageLog, MessageStatus } from '../stores.js';
import { queueNotice, type NoticeDeps } from '../delivery/notice.js';
import { DeliveryScheduler, POSTPONE_SECONDS } from '../delivery/scheduler.js';
import type { HoldCheck } from '../holds.js';
import type { Mailer } from '../ports/mailer.js';
import { DELIVER_QUEUE, deliverJobBody, type DeliverJob } from './deliver-job.js';

/** SQS refuses DelaySeconds above 15 minutes; longer waits are taken in hops (see notBefore). */
const MAX_QUEUE_DELAY_SECONDS = 900;

/** Message-log events that record what one attempt did for one recipient. */
const OUTCOME_EVENTS = new Set(['delivered', 'deferred', 'bounced', 'expired']);

export interface DeliveryAttemptDeps {
  blobs: BlobStore;
  queue: Queue;
  log: MessageLog;
  config: Config;
  resolver: Resolver;
  logger: Logger;
  clock: Clock;
  /** DKIM signing and BATV rewriting, run before each attempt (default: send as stored). */
  prepare?: PrepareMessage;
  /** Called for each recipient refused permanently with a 5.1.x status (bad address): abuse counters, suppression. */
  onHardBounce?: (envelope: Envelope, recipient: string, diagnostic: string) => Promise<void>;
  /** Port of MX hosts (25); tests point it at a local test MX. */
  mxPort?: number;
  /** The login for the smarthost when it asks for AUTH (smarthost mode on AWS: a Secrets Manager secret). */
  smarthostAuth?: SmtpLogin;
  /** A mailer that routes by itself (SES, adapters/aws/ses-mailer.ts): used instead of SMTP when given. */
  mailer?: Mailer;
  /** Per-destination concurrency, shared by every job this process runs (default: one per handler). */
  scheduler?: DeliveryScheduler;
  /** Where attempt durations and queue ages are recorded (the single node's /metrics, EMF on AWS). */
  metrics?: MetricRecorder;
  /** Holds the job instead of attempting it while its sender is locked or on hold (also a retry whose time came). */
  holds?: HoldCheck;
}

function finalStatus(job: DeliverJob, permanent: Failed[], expired: Failed[]): MessageStatus {
  const failed = new Set([...job.bounced, ...permanent.map((item) => item.recipient), ...expired.map((item) => item.recipient)]);
  const recipients = new Set(job.envelope.rcptTo);
  if (failed.size === 0) return 'delivered';
  if (failed.size < recipients.size) return 'partially-delivered';
  return permanent.length === 0 && job.bounced.length === 0 ? 'expired' : 'bounced';
}

export function makeDeliveryAttempt(deps: DeliveryAttemptDeps): (job: DeliverJob, body: string) => Promise<void> {
  const { blobs, queue, log, config, logger, clock } = deps;
  const scheduler = deps.scheduler ?? DeliveryScheduler.fromConfig(config, logger);

  const notices: NoticeDeps = { blobs, log, clock, enqueue: (envelope) => queue.send(DELIVER_QUEUE, deliverJobBody(envelope)).then(() => undefined) };

  /** Queues the DSN of one attempt to the sender; its id derives from the message and the attempt. */
  async function queueDsn(envelope: Envelope, original: Buffer, failures: Failed[], attempt: number): Promise<string> {
    const messageId = `${envelope.messageId}-dsn${attempt}`;
    await queueNotice(notices, {
      messageId,
      about: envelope,
      to: envelope.mailFrom,
      blobKey: `dsn/${messageId}`,
      subject: 'Undelivered Mail Returned to Sender',
      clientIp: '',
      helo: config.hostname,
      detail: { dsnFor: envelope.messageId },
      compose: () => composeDsn({ hostname: config.hostname, envelope, original, failures, now: clock.now() }),
    });
    return messageId;
  }

  /** True when the log already holds this attempt's outcomes (each attempt logs one per recipient). */
  async function attemptAlreadyRecorded(job: DeliverJob): Promise<boolean> {
    const history = await log.get(job.envelope.messageId);
    return (
      history?.events.some((event) => OUTCOME_EVENTS.has(event.event) && event.detail.attempt === job.attempt && job.pending.includes(String(event.detail.recipient))) ?? false
    );
  }

  /**
   * The message file is gone (lost disk, removed by hand) while recipients are pending: they can
   * never get it. The sender is told (5.3.0, with the envelope only) instead of the job retrying
   * into the dead-letter queue in silence.
   */
  async function bounceLostContent(job: DeliverJob): Promise<void> {
    const { envelope } = job;
    const failures: Failed[] = job.pending.map((recipient) => ({
      recipient,
      result: 'permanent',
      status: '5.3.0',
      diagnostic: 'the message content was lost on the relay before it could be delivered; please send it again',
      diagnosticType: 'x-outpost',
    }));
    logger.error('message content lost; bouncing pending recipients', { messageId: envelope.messageId, blobKey: envelope.blobKey, recipients: job.pending.length });
    const stub = Buffer.from(`X-Outpost-Queue-Id: ${envelope.messageId}\r\n\r\n`);
    const dsnId = envelope.mailFrom !== '' ? await queueDsn(envelope, stub, failures, job.attempt) : undefined;
    for (const item of failures) {
      await log.addEvent(envelope.messageId, 'bounced', { recipient: item.recipient, status: item.status, diagnostic: item.diagnostic, attempt: job.attempt }, 'bounced');
    }
    await log.addEvent(envelope.messageId, dsnId ? 'dsn-sent' : 'dsn-suppressed', dsnId ? { dsnMessageId: dsnId, recipients: job.pending } : { reason: 'null envelope sender' }, 'bounced');
  }

  return async function attemptDelivery(job: DeliverJob, body: string): Promise<void> {
    const { envelope } = job;
    if (await deps.holds?.holdIfSenderStopped(DELIVER_QUEUE, envelope, body)) return;
    const now = clock.now();
    if (job.notBefore !== undefined && job.notBefore > now + 1000) {
      const wait = Math.min(Math.ceil((job.notBefore - now) / 1000), MAX_QUEUE_DELAY_SECONDS);
      await queue.send(DELIVER_QUEUE, JSON.stringify(job), { delaySeconds: wait });
      return;
    }

    if (await attemptAlreadyRecorded(job)) {
      // A duplicate receive (SQS is at-least-once): this attempt's retry job and DSN were queued
      // before its outcomes were logged. Only the last step, freeing the blob, may be missing.
      logger.info('deliver job already handled; duplicate receive dropped', { messageId: envelope.messageId, attempt: job.attempt });
      const history = await log.get(envelope.messageId);
      const retried = history?.events.some((event) => (event.event === 'deferred' || event.event === 'postponed') && event.detail.attempt === job.attempt) ?? false;
      if (!retried) await blobs.delete(envelope.blobKey);
      return;
    }

    if (!(await blobs.exists(envelope.blobKey))) {
      await bounceLostContent(job);
      return;
    }
    const original = await blobs.get(envelope.blobKey);
    const outcomes = await timed(deps.metrics, 'outpost_delivery_attempt_duration_seconds', {}, () =>
      deliverEnvelope(envelope, original, job.pending, {
        config,
        resolver: deps.resolver,
        logger,
        prepare: deps.prepare,
        mxPort: deps.mxPort,
        scheduler,
        ...(deps.smarthostAuth ? { smarthostAuth: deps.smarthostAuth } : {}),
        ...(deps.mailer ? { mailer: deps.mailer } : {}),
      }),
    );
    const delivered = outcomes.filter((item): item is Extract<RecipientOutcome, { result: 'delivered' }> => item.result === 'delivered');
    const temporary = outcomes.filter((item): item is Failed => item.result === 'temporary');
    const permanent = outcomes.filter((item): item is Failed => item.result === 'permanent');
    // Their destination was full: not attempted, so no retry is used up.
    const postponed = outcomes.filter((item) => item.result === 'postponed').map((item) => item.recipient);

    // Retry first: from here on a crash repeats this attempt instead of dropping recipients.
    // At most one follow-up job, so that the last one to finish knows every recipient's fate.
    let expired: Failed[] = [];
    let nextAttemptAt: number | undefined;
    let postponedUntil: number | undefined;
    const delay = config.delivery.retrySchedule[job.attempt - 1];
    if (temporary.length > 0 && delay !== undefined) {
      // Counted from now, after this attempt, as the queue counts the delay from the send.
      nextAttemptAt = clock.now() + delay * 1000;
      const retry: DeliverJob = {
        envelope,
        attempt: job.attempt + 1,
        pending: [...temporary.map((item) => item.recipient), ...postponed],
        bounced: [...job.bounced, ...permanent.map((item) => item.recipient)],
        notBefore: nextAttemptAt,
      };
      await queue.send(DELIVER_QUEUE, JSON.stringify(retry), { delaySeconds: Math.min(delay, MAX_QUEUE_DELAY_SECONDS) });
    } else {
      // The retry schedule is used up: the last temporary answer becomes a bounce (RFC 3463 4.4.7).
      expired = temporary.map((item) => ({ ...item, status: '4.4.7' }));
      if (postponed.length > 0) {
        postponedUntil = clock.now() + POSTPONE_SECONDS * 1000;
        const later: DeliverJob = {
          envelope,
          attempt: job.attempt,
          pending: postponed,
          bounced: [...job.bounced, ...permanent.map((item) => item.recipient), ...expired.map((item) => item.recipient)],
          notBefore: postponedUntil,
        };
        await queue.send(DELIVER_QUEUE, JSON.stringify(later), { delaySeconds: POSTPONE_SECONDS });
      }
    }
    const followUp = nextAttemptAt !== undefined || postponedUntil !== undefined;

    const failures = [...permanent, ...expired];
    let dsnId: string | undefined;
    if (failures.length > 0 && envelope.mailFrom !== '') dsnId = await queueDsn(envelope, original, failures, job.attempt);

    const status: MessageStatus = followUp ? 'deferred' : finalStatus(job, permanent, expired);
    // The message's last attempt: how long it spent in the relay, from its 250 to its outcome.
    if (!followUp) deps.metrics?.observe('outpost_queue_age_at_delivery_seconds', (clock.now() - envelope.receivedAt) / 1000, { outcome: status });
    const attempt = job.attempt;
    for (const item of delivered) {
      // The provider's message id (SES) names this delivery in the provider's bounce and complaint events.
      const provider = 'providerMessageId' in item && typeof item.providerMessageId === 'string' ? { providerMessageId: item.providerMessageId } : {};
      await log.addEvent(envelope.messageId, 'delivered', { recipient: item.recipient, response: item.response, remoteMta: item.remoteMta, attempt, ...provider }, status);
    }
    for (const item of temporary) {
      if (nextAttemptAt === undefined) continue;
      await log.addEvent(
        envelope.messageId,
        'deferred',
        { recipient: item.recipient, status: item.status, diagnostic: item.diagnostic, remoteMta: item.remoteMta, attempt, nextAttemptAt },
        status,
      );
    }
    for (const item of permanent) {
      await log.addEvent(envelope.messageId, 'bounced', { recipient: item.recipient, status: item.status, diagnostic: item.diagnostic, remoteMta: item.remoteMta, attempt }, status);
    }
    for (const item of expired) {
      await log.addEvent(envelope.messageId, 'expired', { recipient: item.recipient, status: item.status, diagnostic: item.diagnostic, remoteMta: item.remoteMta, attempt }, status);
    }
    if (postponedUntil !== undefined && outcomes.length > postponed.length) {
      // Only with other outcomes of this attempt logged: then a duplicate receive of this job
      // must keep the message for the postponed job (see the duplicate check above).
      for (const recipient of postponed) await log.addEvent(envelope.messageId, 'postponed', { recipient, attempt, until: postponedUntil }, status);
    }
    if (dsnId !== undefined) {
      await log.addEvent(envelope.messageId, 'dsn-sent', { dsnMessageId: dsnId, recipients: failures.map((item) => item.recipient) }, status);
    } else if (failures.length > 0) {
      // RFC 3464: a message with the null sender (itself a DSN) never causes another DSN.
      await log.addEvent(envelope.messageId, 'dsn-suppressed', { reason: 'null envelope sender' }, status);
    }
    logger.info('delivery attempt done', {
      messageId: envelope.messageId,
      attempt,
      delivered: delivered.length,
      deferred: nextAttemptAt !== undefined ? temporary.length : 0,
      postponed: postponed.length,
      bounced: failures.length,
      status,
    });

    if (deps.onHardBounce) {
      for (const item of permanent.filter((failure) => failure.status.startsWith('5.1.'))) {
        try {
          await deps.onHardBounce(envelope, item.recipient, item.diagnostic);
        } catch (error: unknown) {
          // The mail is already delivered or bounced: failing the record would send it again.
          logger.error('hard-bounce hook failed', { messageId: envelope.messageId, recipient: item.recipient, error: errorMessage(error) });
        }
      }
    }

    if (!followUp) await blobs.delete(envelope.blobKey);
  };
}
