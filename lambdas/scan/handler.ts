// The scan handler: takes envelopes from the 'scan' queue (SQS in AWS, the SQLite queue on the
// single node), runs the content checks and acts on the verdict:
//   deliver    -> a job on the 'deliver' queue, event 'scanned' with the symbols;
//   quarantine -> held with its reasons, a report to the sender, event 'quarantined', abuse counted;
//   retry      -> event 'scan-deferred' with the error and the time of the next try; a scan job
//                 is queued again after the delay of delivery.retrySchedule for this try, so an
//                 engine that stays down is retried for as long as delivery would be (about three
//                 days); then the message expires and the sender gets a DSN. Never delivered
//                 unscanned, never left to the dead-letter queue in silence.
import type { Symbol } from '../../core/checks/check.js';
import type { Config } from '../../core/config.js';
import type { IngressPolicy } from '../../core/policy/index.js';
import type { Stores } from '../../core/ports/stores.js';
import { enginesFromConfig } from '../../adapters/scan/from-config.js';
import { createLogger, errorMessage } from '../../core/log.js';
import { startTimer, type MetricRecorder } from '../../core/metrics.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from '../../core/ports.js';
import type { UserSettings } from '../../core/settings.js';
import type { MessageLog } from '../../core/stores.js';
import { perRecord, type SqsHandler } from '../../core/sqs-event.js';
import { builtinRulesWarning } from '../../core/scan/builtin-rules.js';
import type { SpamEngine, VirusScanner } from '../../core/scan/engines.js';
import type { FingerprintStore } from '../../core/scan/fingerprint.js';
import { sendHeldReport, type HeldReportInput, type QuarantineStore } from '../../core/scan/quarantine.js';
import { DELIVER_QUEUE, deliverJobBody } from '../../core/app/deliver-job.js';
import { learnFromVerdict, scanMessage } from '../../core/scan/scan.js';
import { verdictReasons } from '../../core/scan/verdict.js';
import { envelopeSchema } from '../../core/envelope.js';
import { headerBlock, headerValues } from '../../core/headers.js';
import { z } from 'zod';
import { composeDsn, type FailedRecipient } from '../../core/delivery/dsn.js';
import { queueNotice } from '../../core/delivery/notice.js';

/** SQS refuses DelaySeconds above 15 minutes; longer waits are taken in hops (see notBefore). */
const MAX_QUEUE_DELAY_SECONDS = 900;

/**
 * A scan job after a failed try: the envelope with the number of the next try and its earliest
 * time. The first try's body is the bare envelope, as the ingress queues it.
 */
const scanRetrySchema = z.object({
  envelope: envelopeSchema,
  /** 2 for the second try; try n waits delivery.retrySchedule[n - 2] seconds after try n - 1. */
  attempt: z.number().int().min(2),
  notBefore: z.number(),
});

interface ScanJob {
  envelope: Envelope;
  attempt: number;
  notBefore?: number;
}
import type { HoldCheck } from '../../core/holds.js';

/** A message's log as `MessageLog.get` returns it. */
type MessageHistory = Awaited<ReturnType<MessageLog['get']>>;

export interface ScanHandlerDeps {
  blobs: BlobStore;
  queue: Queue;
  log: MessageLog;
  config: Config;
  logger: Logger;
  clock: Clock;
  virusScanner?: VirusScanner;
  spamEngine: SpamEngine;
  fingerprints: FingerprintStore;
  quarantine: QuarantineStore;
  settingsFor: (envelope: Envelope) => Promise<UserSettings>;
  /** Feeds the user's abuse counters (and so the automatic lock); called for spam and virus verdicts. */
  onAbuse?: (envelope: Envelope, kind: 'spam' | 'virus', symbols: Symbol[]) => Promise<void>;
  /** Holds the job instead of scanning it while its sender is locked or on hold. */
  holds?: HoldCheck;
  /** Where the scan's duration is recorded (the single node's /metrics, EMF on AWS). */
  metrics?: MetricRecorder;
}

/**
 * The scan stage's dependencies from one backend's stores, with the engines the configuration
 * names: what the single node's pipeline and the scan Lambda both hand to makeScanHandler.
 */
export function scanHandlerDeps(wiring: {
  stores: Pick<Stores, 'blobs' | 'queue' | 'log' | 'fingerprints' | 'quarantine' | 'clock'>;
  config: Config;
  policy: Pick<IngressPolicy, 'recordAbuse'>;
  holds: HoldCheck;
  settingsFor(userId: string): Promise<UserSettings>;
  metrics?: MetricRecorder;
}): ScanHandlerDeps {
  const { stores, config, policy, holds, settingsFor } = wiring;
  return {
    blobs: stores.blobs,
    queue: stores.queue,
    log: stores.log,
    config,
    logger: createLogger('scan'),
    clock: stores.clock,
    ...enginesFromConfig(config.scanning),
    fingerprints: stores.fingerprints,
    quarantine: stores.quarantine,
    settingsFor: (envelope) => settingsFor(envelope.userId),
    onAbuse: (envelope, kind, symbols) => policy.recordAbuse(envelope.clientIp, envelope.userId, symbols, kind),
    holds,
    ...(wiring.metrics ? { metrics: wiring.metrics } : {}),
  };
}

/** Warnings to print at start when scanning runs with less than real engines. */
export function scanStartupWarnings(deps: { virusScanner?: VirusScanner; spamEngine: SpamEngine }): string[] {
  const warnings: string[] = [];
  if (!deps.virusScanner) {
    warnings.push(
      'WARNING: no virus scanner configured (scanning.clamd / OUTPOST_CLAMD); outgoing mail is NOT scanned for viruses. ' +
        'Run clamd and set OUTPOST_CLAMD=host:port or a socket path.',
    );
  }
  if (deps.spamEngine.name === 'builtin') warnings.push(builtinRulesWarning());
  return warnings;
}

function parseScanJob(body: string): ScanJob {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new Error('scan job body is not JSON; it is retried and ends in the scan dead-letter queue');
  }
  const retry = scanRetrySchema.safeParse(json);
  if (retry.success) return retry.data;
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new Error(`scan job body is not an envelope (${issues}); it is retried and ends in the scan dead-letter queue`);
  }
  return { envelope: parsed.data, attempt: 1 };
}

function headerOf(raw: Buffer, name: string): string | undefined {
  return headerValues(headerBlock(raw), name)[0];
}

/**
 * The headers of the original that the held report quotes. After a virus verdict they are quoted
 * only if the scanner finds them clean on their own: a signature can match the Subject, and the
 * report must never carry what was found.
 */
async function quotableHeaders(raw: Buffer, subject: string | null, virusScanner: VirusScanner | undefined): Promise<HeldReportInput['original']> {
  const messageIdHeader = headerOf(raw, 'message-id');
  const date = headerOf(raw, 'date');
  const original = { subject, ...(messageIdHeader ? { messageIdHeader } : {}), ...(date ? { date } : {}) };
  if (!virusScanner) return original;
  const quoted = Buffer.from([subject ?? '', messageIdHeader ?? '', date ?? ''].join('\r\n'));
  const clean = await virusScanner.scan(quoted).then(
    (result) => !result.infected,
    () => false,
  );
  return clean ? original : { subject: null };
}

export function makeScanHandler(deps: ScanHandlerDeps): SqsHandler {
  const { config, logger } = deps;

  /**
   * The engines could not give a verdict on this try. The next try is queued after the delay of
   * delivery.retrySchedule for it; when the schedule is used up, the message expires: the sender
   * is told (DSN, 4.4.7) and its content is deleted.
   */
  const deferScan = async (envelope: Envelope, attempt: number, symbols: Symbol[], reason: string): Promise<void> => {
    const delay = config.delivery.retrySchedule[attempt - 1];
    if (delay !== undefined) {
      const nextAttemptAt = deps.clock.now() + delay * 1000;
      await deps.queue.send('scan', JSON.stringify({ envelope, attempt: attempt + 1, notBefore: nextAttemptAt }), { delaySeconds: Math.min(delay, MAX_QUEUE_DELAY_SECONDS) });
      await deps.log.addEvent(envelope.messageId, 'scan-deferred', { symbols, attempt, nextAttemptAt }, 'deferred');
      logger.warn('scan deferred; retrying later', { messageId: envelope.messageId, attempt, nextAttemptAt, reason });
      return;
    }
    const failures: FailedRecipient[] = envelope.rcptTo.map((recipient) => ({
      recipient,
      status: '4.4.7',
      diagnostic: `the message could not be checked for viruses and spam (${reason}); it was not delivered. Please send it again later`,
      diagnosticType: 'x-outpost',
    }));
    let dsnId: string | undefined;
    if (envelope.mailFrom !== '') {
      dsnId = `${envelope.messageId}-dsn-scan`;
      const original = await deps.blobs.get(envelope.blobKey);
      await queueNotice(
        { blobs: deps.blobs, log: deps.log, clock: deps.clock, enqueue: (notice) => deps.queue.send(DELIVER_QUEUE, deliverJobBody(notice)).then(() => undefined) },
        {
          messageId: dsnId,
          about: envelope,
          to: envelope.mailFrom,
          blobKey: `dsn/${dsnId}`,
          subject: 'Undelivered Mail Returned to Sender',
          clientIp: '',
          helo: config.hostname,
          detail: { dsnFor: envelope.messageId },
          compose: () => composeDsn({ hostname: config.hostname, envelope, original, failures, now: deps.clock.now() }),
        },
      );
    }
    await deps.log.addEvent(envelope.messageId, 'scan-expired', { symbols, attempt, reason }, 'expired');
    await deps.log.addEvent(envelope.messageId, dsnId ? 'dsn-sent' : 'dsn-suppressed', dsnId ? { dsnMessageId: dsnId, recipients: envelope.rcptTo } : { reason: 'null envelope sender' }, 'expired');
    logger.error('scan retries used up; message expired and the sender told', { messageId: envelope.messageId, attempt, reason, dsn: dsnId ?? null });
    await deps.blobs.delete(envelope.blobKey);
  };

  /** `history`: the message's log as read when the job was received. */
  const handleEnvelope = async (envelope: Envelope, attempt: number, history: MessageHistory): Promise<void> => {
    // The queue is at-least-once (and a crash between queueing the deliver job and deleting this
    // job hands it over again): 'scanned' is logged after the deliver job is queued, so once it is
    // there, scanning again would only deliver the message twice.
    if (history?.events.some((event) => event.event === 'scanned')) {
      logger.info('scan job already handled; duplicate receive dropped', { messageId: envelope.messageId });
      return;
    }
    if (!(await deps.blobs.exists(envelope.blobKey))) {
      // The content is gone (lost disk, removed by hand): there is nothing to scan or deliver.
      // Delivery bounces a message without content to its sender (5.3.0) instead of this job
      // retrying into the dead-letter queue in silence.
      logger.error('message content lost before scanning; handed to delivery to bounce', { messageId: envelope.messageId, blobKey: envelope.blobKey });
      await deps.log.addEvent(envelope.messageId, 'scan-skipped', { reason: 'message content lost' });
      await deps.queue.send(DELIVER_QUEUE, deliverJobBody(envelope));
      return;
    }
    const raw = await deps.blobs.get(envelope.blobKey);
    const settings = await deps.settingsFor(envelope);
    const scanned = startTimer(deps.metrics, 'outpost_scan_duration_seconds');
    const outcome = await scanMessage(raw, envelope, settings, {
      ...(deps.virusScanner ? { virusScanner: deps.virusScanner } : {}),
      spamEngine: deps.spamEngine,
      fingerprints: deps.fingerprints,
      clock: deps.clock,
      scanning: config.scanning,
    });
    const { verdict } = outcome;
    scanned({ verdict: verdict.action });
    if (verdict.action === 'retry') {
      const evidence = verdict.symbols[0]?.evidence;
      const reason = typeof evidence === 'object' && evidence !== null && 'error' in evidence ? String(evidence.error) : 'engine failure';
      await deferScan(envelope, attempt, verdict.symbols, reason);
      return;
    }
    await learnFromVerdict(outcome, envelope, { fingerprints: deps.fingerprints, clock: deps.clock, scanning: config.scanning });
    // Counted before acting: if counting fails the scan is retried, which may count twice but
    // never queues the message twice.
    const abuse = verdict.kind === 'virus' ? 'virus' : verdict.spam ? 'spam' : undefined;
    if (abuse && deps.onAbuse) await deps.onAbuse(envelope, abuse, verdict.symbols);

    if (verdict.action === 'deliver') {
      await deps.queue.send(DELIVER_QUEUE, deliverJobBody(envelope));
      // After the send (the marker above): delivery may log 'delivered' first, which this 'queued' does not undo (statusAfterEvent).
      await deps.log.addEvent(envelope.messageId, 'scanned', { kind: verdict.kind, score: verdict.score, spam: verdict.spam, symbols: verdict.symbols }, 'queued');
      logger.info('message scanned', { messageId: envelope.messageId, kind: verdict.kind, score: verdict.score });
    } else {
      const now = deps.clock.now();
      await deps.quarantine.add({
        messageId: envelope.messageId,
        tenantId: envelope.tenantId,
        userId: envelope.userId,
        envelope,
        kind: verdict.kind,
        symbols: verdict.symbols,
        subject: outcome.subject,
        blobKey: envelope.blobKey,
        quarantinedAt: now,
      });
      const reasons = verdictReasons(verdict);
      const report = await sendHeldReport(
        { blobs: deps.blobs, queue: deps.queue },
        {
          envelope,
          symbols: reasons,
          original: await quotableHeaders(raw, outcome.subject, verdict.kind === 'virus' ? deps.virusScanner : undefined),
          hostname: config.hostname,
          at: now,
        },
      );
      await deps.log.addEvent(
        envelope.messageId,
        'quarantined',
        { kind: verdict.kind, score: verdict.score, reasons: reasons.map((item) => item.name), symbols: verdict.symbols, ...(report ? { report: report.messageId } : {}) },
        'quarantined',
      );
      logger.warn('message quarantined', { messageId: envelope.messageId, kind: verdict.kind, reasons: reasons.map((item) => item.name) });
    }
  };

  const handleJob = async (job: ScanJob, body: string): Promise<void> => {
    const now = deps.clock.now();
    if (job.notBefore !== undefined && job.notBefore > now + 1000) {
      // Received early (a wait longer than the queue's delay limit): queued again for the rest.
      const wait = Math.min(Math.ceil((job.notBefore - now) / 1000), MAX_QUEUE_DELAY_SECONDS);
      await deps.queue.send('scan', JSON.stringify(job), { delaySeconds: wait });
      return;
    }
    // Read once for both duplicate checks below (one message-log read a job, not two).
    const history = await deps.log.get(job.envelope.messageId);
    if (tryAlreadyRecorded(job, history)) {
      // A duplicate receive (SQS is at-least-once): this try's next job or DSN is already queued.
      logger.info('scan try already handled; duplicate receive dropped', { messageId: job.envelope.messageId, attempt: job.attempt });
      return;
    }
    if (await deps.holds?.holdIfSenderStopped('scan', job.envelope, body)) return;
    await handleEnvelope(job.envelope, job.attempt, history);
  };

  /** True when the log holds the outcome of this failed try (each logs one, after queueing what follows). */
  const tryAlreadyRecorded = (job: ScanJob, history: MessageHistory): boolean =>
    history?.events.some((event) => (event.event === 'scan-deferred' || event.event === 'scan-expired') && event.detail.attempt === job.attempt) ?? false;

  return perRecord(
    async (record) => handleJob(parseScanJob(record.body), record.body),
    (record, error) => logger.error('scan failed; the message will be retried', { sqsMessageId: record.messageId, error: errorMessage(error) }),
  );
}
