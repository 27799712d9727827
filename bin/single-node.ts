// The single-node deployment (`npm start`): the same ingress, the same pipeline handlers and the
// same API as on AWS, in one process, on SQLite and the filesystem, delivering by SMTP.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { Config } from '../core/config.js';
import { createLogger, errorMessage } from '../core/log.js';
import { Metrics } from '../core/metrics.js';
import type { Clock, Logger } from '../core/ports.js';
import { QUEUE_NAMES, systemClock } from '../core/ports.js';
import { purgeQuarantine } from '../core/scan/quarantine.js';
import { effectiveSettings } from '../core/settings.js';
import { userSettings } from '../core/stores.js';
import type { SqsHandler } from '../core/sqs-event.js';
import { createResolver } from '../adapters/local/dns.js';
import { Poller } from '../adapters/local/poller.js';
import { SqliteAcceptanceBatch } from '../adapters/local/acceptance-batch.js';
import { SqliteMessageLog } from '../adapters/local/message-log.js';
import { ensurePrivateDir } from '../adapters/local/private-files.js';
import { metricsAccess } from './metrics-access.js';
import { operatorToken, tlsMaterial } from '../adapters/local/secrets.js';
import { enginesFromConfig } from '../adapters/scan/from-config.js';
import { deliverJobSchema, makeDeliverHandler } from '../lambdas/deliver/handler.js';
import { bodyReader, setAsideDamagedEntries } from '../adapters/local/damaged-entries.js';
import { envelopeSchema } from '../core/envelope.js';
import { makeScanHandler, scanStartupWarnings } from '../lambdas/scan/handler.js';
import { bounceTenantsFrom } from '../core/bounce/admission.js';
import { purgeOrphanBounces } from '../core/bounce/housekeeping.js';
import { makeOutgoingPreparer } from '../core/dkim/sign.js';
import type { Check } from '../core/checks/check.js';
import { makeIngressPolicy } from '../core/policy/index.js';
import { makeLocksAndHolds, queueLifetimeMs } from '../core/holds.js';
import { suppressHardBounce, suppressionCheck } from '../core/suppression.js';
import { createApiApp } from '../lambdas/api/app.js';
import { webRoutes } from '../web/serve.js';
import { BOUNCES_DROPPED_HELP, BOUNCES_DROPPED_METRIC, makeBounceHandler } from '../lambdas/bounce/handler.js';
import { BounceListener } from '../smtp-ec2/bounce-listener.js';
import { Ingress } from '../smtp-ec2/ingress.js';
import { openLocalStores, type LocalStores } from './local-stores.js';

export interface RunningNode {
  ports: { submission: number; submissions: number; bounce: number; http: number };
  operatorToken: { token: string; created: boolean; path?: string };
  certPath: string;
  warnings: string[];
  stores: LocalStores;
  /** Stops accepting, lets sessions in flight finish, stops the pollers, closes the database. */
  stop(): Promise<void>;
}

export interface NodeOptions {
  clock?: Clock;
  logger?: Logger;
  /** Port of MX hosts for direct delivery (25); tests point it at a local MX. */
  mxPort?: number;
}

const HOUSEKEEPING_INTERVAL_MS = 10 * 60_000;

export async function startNode(config: Config, options: NodeOptions = {}): Promise<RunningNode> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger('outpost');
  ensurePrivateDir(config.dataDir);
  const stores = openLocalStores(config, clock);
  const token = await operatorToken(config.dataDir, config.operatorToken);
  const tls = await tlsMaterial(config.dataDir, config.hostname, { keyFile: config.smtp.tlsKeyFile, certFile: config.smtp.tlsCertFile });
  // Delivery asks DNS afresh each time; the admission checks use a cache (dns.cacheSeconds).
  const resolver = createResolver({ ...config.dns, cacheSeconds: 0 });
  const metrics = new Metrics();
  metrics.declare('outpost_smtp_sessions_total', 'counter', 'SMTP sessions opened, by listener.');
  metrics.declare('outpost_smtp_refusals_total', 'counter', 'SMTP refusals by phase and reason (first symbol).');
  metrics.declare('outpost_messages_accepted_total', 'counter', 'Messages accepted (250) and queued.');
  metrics.declare(BOUNCES_DROPPED_METRIC, 'counter', BOUNCES_DROPPED_HELP);
  watchDeadLetters(stores, metrics, logger);

  const settingsFor = (userId: string) => userSettings(stores.configStore, userId, config.defaults);

  // Policy: limits, locks (and the mail they hold), sender rules, auth abuse, IP reputation; plus the suppression list.
  const { locks, holds } = makeLocksAndHolds({
    holdStore: stores.holdStore,
    queue: stores.queue,
    blobs: stores.blobs,
    log: stores.log,
    store: stores.lockStore,
    counters: stores.counters,
    clock,
    configStore: stores.configStore,
    config,
    logger: createLogger('locks'),
    onLockEvent: (event) => metrics.inc('outpost_lock_events_total', 'Locks, timed unlocks and manual unlocks.', { kind: event.kind }),
  });
  const policy = makeIngressPolicy({ counters: stores.counters, locks, resolver: createResolver(config.dns), clock, config, logger: createLogger('policy'), configStore: stores.configStore, loginSources: stores.loginSources });
  const hardBounce = async (tenantId: string, userId: string, recipient: string, diagnostic: string): Promise<void> => {
    await suppressHardBounce(stores.suppression, { tenantId, address: recipient, reason: diagnostic, now: clock.now() });
    await policy.recordHardBounces(userId, 1, { recipient });
  };

  const pollers = new Map<string, Poller>();
  const poller = (queueName: string, handler: SqsHandler, concurrency?: number): Poller => {
    const created = new Poller({
      concurrency,
      queue: stores.queue,
      queueName,
      handler,
      batchSize: config.queue.batchSize,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      pollIntervalMs: config.queue.pollIntervalMs,
      logger: createLogger(`poller.${queueName}`),
    });
    pollers.set(queueName, created);
    return created;
  };
  const nudge = (queueName: string): void => pollers.get(queueName)?.nudge();

  // deliver: DKIM-sign, BATV-tag, send by SMTP, retry, bounce.
  const preparer = makeOutgoingPreparer({
    keys: stores.dkimKeys,
    settingsFor: (envelope) => settingsFor(envelope.userId),
    tenantOfDomain: async (domain) => (await stores.configStore.getDomain(domain))?.tenantId,
    batvKeys: stores.batvKeys,
    directSmtp: true,
    clock,
  });
  poller(
    'deliver',
    makeDeliverHandler({
      blobs: stores.blobs,
      queue: stores.pipelineQueue,
      log: stores.log,
      config,
      resolver,
      logger: createLogger('deliver'),
      clock,
      mxPort: options.mxPort,
      async prepare(raw, envelope) {
        const prepared = await preparer(raw, envelope);
        await stores.log.addEvent(envelope.messageId, prepared.dkim.signed ? 'dkim-signed' : 'dkim-unsigned', { ...prepared.dkim, batv: prepared.batv });
        return prepared;
      },
      onHardBounce: (envelope, recipient, diagnostic) => hardBounce(envelope.tenantId, envelope.userId, recipient, diagnostic),
      holds,
    }),
    // Jobs one by one as slots free: a dead destination holds only its own jobs.
    config.delivery.concurrency,
  );

  // bounce: DSNs accepted by the bounce listener, attributed, suppressed, forwarded.
  poller(
    'bounce',
    makeBounceHandler({
      blobs: stores.blobs,
      queue: stores.queue,
      log: stores.log,
      suppression: stores.suppression,
      logger: createLogger('bounce'),
      clock,
      onHardBounce: (userId, address) => policy.recordHardBounces(userId, 1, { recipient: address, via: 'bounce' }),
      shouldForward: async ({ userId }) => (await settingsFor(userId)).forwardBounces,
      hostname: config.hostname,
      scanning: { ...enginesFromConfig(config.scanning), scanning: config.scanning, spamThreshold: effectiveSettings(config.defaults).spamThreshold },
      maxRecipients: config.bounces.maxRecipients,
      metrics,
    }),
  );

  // scan: virus, spam, fingerprints; verdicts feed the abuse counters.
  const engines = enginesFromConfig(config.scanning);
  const warnings = scanStartupWarnings(engines);
  for (const warning of warnings) logger.warn(warning);
  const scanHandler = makeScanHandler({
    blobs: stores.blobs,
    queue: stores.pipelineQueue,
    log: stores.log,
    config,
    logger: createLogger('scan'),
    clock,
    ...engines,
    fingerprints: stores.fingerprints,
    quarantine: stores.quarantine,
    settingsFor: (envelope) => settingsFor(envelope.userId),
    onAbuse: (envelope, kind, symbols) => policy.recordAbuse(envelope.clientIp, envelope.userId, symbols, kind),
    holds,
  });
  poller('scan', async (event) => {
    const response = await scanHandler(event);
    nudge('deliver');
    return response;
  });

  // Group commit: the messages that finish DATA together share one durable commit.
  const acceptance = new SqliteAcceptanceBatch(stores.db, new SqliteMessageLog(stores.db, clock), stores.queue);
  const ingress = new Ingress({
    config,
    configStore: stores.configStore,
    blobs: stores.blobs,
    queue: stores.queue,
    log: stores.log,
    logger: createLogger('ingress'),
    clock,
    tls,
    metrics,
    stats: stores.stats,
    policy: { ...policy, rcptTo: withCheckBefore(policy.rcptTo, 'rate-limits', suppressionCheck(stores.suppression)) },
    recordAccepted: (message) => acceptance.record(message),
    onQueued: nudge,
  });
  const smtpPorts = await ingress.listen(config.listenAddress, { submission: config.smtp.port, submissions: config.smtp.smtpsPort });

  const bounceListener = new BounceListener({
    config,
    blobs: stores.blobs,
    queue: stores.queue,
    logger: createLogger('bounce-listener'),
    clock,
    batvKeys: stores.batvKeys,
    counters: stores.counters,
    tls,
    metrics,
    onQueued: nudge,
    tenantFor: bounceTenantsFrom(stores.configStore, config.defaults),
  });
  const bouncePort = await bounceListener.listen(config.listenAddress, config.smtp.bouncePort);

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/metrics', metricsAccess({ publicMetrics: config.http.publicMetrics, metricsToken: config.http.metricsToken, operatorToken: token.token }), async (c) => {
    await collectGauges(metrics, stores, ingress.activeSessions, queueLifetimeMs(config.delivery.retrySchedule));
    return c.text(metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.route(
    '/',
    createApiApp({
      operatorToken: token.token,
      configStore: stores.configStore,
      messageLog: stores.log,
      apiKeys: stores.apiKeys,
      stats: stores.stats,
      clock,
      logger: createLogger('api'),
      defaults: config.defaults,
      locks,
      dkimKeys: stores.dkimKeys,
      suppression: stores.suppression,
      quarantine: { store: stores.quarantine, blobs: stores.blobs, queue: stores.queue },
      deadLetters: stores.queue,
      resolver,
      relayHostname: config.hostname,
      audit: stores.audit,
      holds: { holds, store: stores.holdStore, queueLifetimeMs: queueLifetimeMs(config.delivery.retrySchedule) },
    }),
  );
  webRoutes(app);
  const http = await new Promise<{ server: ServerType; port: number }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: config.http.port, hostname: config.listenAddress }, (info) => resolve({ server, port: info.port }));
    server.once('error', reject);
  });
  // After listening, an error on the HTTP server (a client's socket included) is logged, never fatal.
  http.server.on('error', (error: unknown) => logger.warn('http server error', { error: errorMessage(error) }));

  await setAsideDamaged(stores, config, logger, metrics, clock);
  const recovered = stores.queue.recoverInFlight();
  if (recovered > 0) logger.warn('recovered messages that were in flight when the previous run stopped', { count: recovered });
  await reportDeadLetters(stores, logger);
  if (config.delivery.attemptTimeoutSeconds >= config.queue.visibilityTimeoutSeconds) {
    logger.warn('delivery.attemptTimeoutSeconds is not below queue.visibilityTimeoutSeconds: a slow attempt may be received again and delivered twice', {
      attemptTimeoutSeconds: config.delivery.attemptTimeoutSeconds,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
    });
  }
  for (const item of pollers.values()) item.start();

  const housekeeping = setInterval(() => {
    runHousekeeping(stores, config, clock).catch((error: unknown) => logger.error('housekeeping failed', { error: errorMessage(error) }));
  }, HOUSEKEEPING_INTERVAL_MS);
  housekeeping.unref();
  // The hold check: a timed lock ends without anyone acting, so its held mail is looked after here.
  // One check at a time: a large release may outlast the interval (claims keep a second one safe, not useful).
  let holdCheckRunning = false;
  const holdCheck = setInterval(() => {
    if (holdCheckRunning) return;
    holdCheckRunning = true;
    holds
      .releaseEnded()
      .then((released) => {
        if (released === 0) return;
        nudge('scan');
        nudge('deliver');
      })
      .catch((error: unknown) => logger.error('hold check failed', { error: errorMessage(error) }))
      .finally(() => {
        holdCheckRunning = false;
      });
  }, config.queue.holdCheckSeconds * 1000);
  holdCheck.unref();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping: no new connections; sessions in flight may finish', { closeTimeoutSeconds: config.smtp.closeTimeoutSeconds });
      clearInterval(housekeeping);
      clearInterval(holdCheck);
      await Promise.all([ingress.close(), bounceListener.close()]);
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await Promise.all([...pollers.values()].map((item) => item.stop()));
      stores.close();
      logger.info('stopped');
    })();
    return stopping;
  };

  return {
    ports: { ...smtpPorts, bounce: bouncePort, http: http.port },
    operatorToken: token,
    certPath: tls.certPath,
    warnings,
    stores,
    stop,
  };
}

/**
 * The last line of defence of `outpost start`: a rejected promise nobody handled is logged as an
 * error (with its stack, to be fixed) instead of ending the process and every session in it.
 * Session code never relies on this; tests assert that the line never appears.
 */
export function logUnhandledRejections(logger: Logger): void {
  process.on('unhandledRejection', (reason: unknown) => {
    logger.error('unhandled promise rejection', { error: errorMessage(reason), stack: reason instanceof Error ? reason.stack : undefined });
  });
}

/**
 * Removes what has outlived its retention: quarantined messages, learned fingerprints and bulk
 * sightings, counter entries out of every window, expired suppressions, orphan bounce files, old
 * message log entries and refusal statistics. Runs every 10 minutes on the single node.
 */
export async function runHousekeeping(stores: LocalStores, config: Config, clock: Clock): Promise<void> {
  const now = clock.now();
  const logCutoff = now - config.messageLog.retentionDays * 86_400_000;
  await purgeQuarantine({ quarantine: stores.quarantine, blobs: stores.blobs, log: stores.log, clock }, config.scanning.quarantineRetentionDays);
  await stores.fingerprints.purgeOlderThan({
    learned: now - config.scanning.fingerprintRetentionDays * 86_400_000,
    sightings: now - config.scanning.bulkWindowMinutes * 60_000,
  });
  await stores.counters.purgeExpired();
  await stores.loginSources.purgeExpired(now);
  await stores.suppression.purgeExpired(now);
  await purgeOrphanBounces(
    { blobs: stores.blobs, queuedBounceJobs: async () => stores.queue.bodies(['bounce', 'bounce-dlq']), clock, logger: createLogger('housekeeping') },
    config.bounces.orphanHours,
  );
  await stores.log.purgeOlderThan(logCutoff);
  await stores.stats.purgeOlderThan(logCutoff);
}

/** Deals with queue entries damaged on disk (a bad body: set aside; a missing or garbled message file: set aside and bounced), so that they neither block start-up nor fail forever or in silence. */
async function setAsideDamaged(stores: LocalStores, config: Config, logger: Logger, metrics: Metrics, clock: Clock): Promise<void> {
  const envelopeBody = bodyReader(envelopeSchema, (envelope) => envelope);
  const { damaged, unchecked } = await setAsideDamagedEntries(stores.db, {
    dataDir: config.dataDir,
    now: clock.now(),
    readers: { scan: envelopeBody, bounce: envelopeBody, deliver: bodyReader(deliverJobSchema, (job) => job.envelope) },
  });
  for (const entry of damaged) {
    logger.error(entry.action === 'bounced' ? 'damaged message file set aside; the message bounces to its sender' : 'damaged queue entry set aside', { ...entry, see: 'npx outpost queue status' });
    metrics.inc('outpost_damaged_entries_total', 'Queue entries set aside at start-up because their body or message file was damaged.', { queue: entry.queue });
    if (entry.messageId) await stores.log.addEvent(entry.messageId, 'damaged', { reason: entry.reason, movedTo: entry.movedBlob }).catch((error: unknown) => logger.warn('recording the set-aside event failed', { id: entry.messageId, error: errorMessage(error) }));
  }
  for (const entry of unchecked) logger.warn('queue entry could not be checked at start-up; left in place', entry);
}

/** Inserts `check` before the check named `before` (rate limits stay last: they reserve). */
function withCheckBefore<Ctx>(checks: ReadonlyArray<Check<Ctx>>, before: string, check: Check<Ctx>): Array<Check<Ctx>> {
  const index = checks.findIndex((item) => item.name === before);
  return index < 0 ? [...checks, check] : [...checks.slice(0, index), check, ...checks.slice(index)];
}

const DEAD_LETTERS_HELP = 'Messages moved to a dead-letter queue after queue.maxReceives failed receives, by queue.';

/**
 * The operator's alert for a message that ends in a dead-letter queue: an error line naming it
 * and a counter. The cause (a bug, a store down for long) needs a person; once it is fixed,
 * `npx outpost queue redrive` (or POST /v1/queues/{queue}/redrive) moves the messages back.
 */
function watchDeadLetters(stores: LocalStores, metrics: Metrics, logger: Logger): void {
  metrics.declare('outpost_dead_letters_total', 'counter', DEAD_LETTERS_HELP);
  stores.queue.onDeadLetter((deadLetter) => {
    logger.error('message moved to the dead-letter queue; fix the cause, then run: npx outpost queue redrive ' + deadLetter.queue, {
      queue: deadLetter.queue,
      deadLetterQueue: `${deadLetter.queue}-dlq`,
      queueMessageId: deadLetter.queueMessageId,
      receiveCount: deadLetter.receiveCount,
      ...(deadLetter.messageId !== undefined ? { messageId: deadLetter.messageId } : {}),
    });
    metrics.inc('outpost_dead_letters_total', DEAD_LETTERS_HELP, { queue: deadLetter.queue });
  });
}

/** At start: messages left in dead-letter queues by earlier runs still need the operator. */
async function reportDeadLetters(stores: LocalStores, logger: Logger): Promise<void> {
  for (const queue of QUEUE_NAMES) {
    const depth = await stores.queue.depth(`${queue}-dlq`);
    const count = depth.visible + depth.inFlight + depth.delayed;
    if (count > 0) logger.error(`dead-letter queue ${queue}-dlq holds messages; fix the cause, then run: npx outpost queue redrive ${queue}`, { queue, count });
  }
}

/** Gauges read at scrape time: queue depths, message outcomes from the log, held mail, locks. */
async function collectGauges(metrics: Metrics, stores: LocalStores, activeSessions: number, queueLifetime: number): Promise<void> {
  metrics.set('outpost_smtp_sessions_active', 'SMTP sessions open now.', {}, activeSessions);
  for (const name of ['scan', 'deliver', 'bounce']) {
    for (const queue of [name, `${name}-dlq`]) {
      const depth = await stores.queue.depth(queue);
      metrics.set('outpost_queue_messages', 'Messages in a pipeline queue, by state.', { queue, state: 'visible' }, depth.visible);
      metrics.set('outpost_queue_messages', 'Messages in a pipeline queue, by state.', { queue, state: 'in_flight' }, depth.inFlight);
      metrics.set('outpost_queue_messages', 'Messages in a pipeline queue, by state.', { queue, state: 'delayed' }, depth.delayed);
    }
    const dead = await stores.queue.depth(`${name}-dlq`);
    metrics.set('outpost_dead_letter_messages', 'Messages waiting in a dead-letter queue (alert when above 0), by queue.', { queue: name }, dead.visible + dead.inFlight + dead.delayed);
  }
  const events = stores.db.prepare('SELECT event, COUNT(*) AS n FROM message_events GROUP BY event').all() as Array<{ event: string; n: number }>;
  for (const { event, n } of events) {
    metrics.set('outpost_message_events', 'Message log events (delivered, deferred, bounced, scanned, quarantined, ...) since the log began.', { event }, n);
  }
  const held = await stores.holdStore.summary({ overdueBefore: stores.clock.now() - queueLifetime });
  for (const reason of ['locked', 'manual'] as const) {
    const ofReason = held.filter((item) => item.reason === reason);
    metrics.set('outpost_queue_held', 'Messages held out of the pipeline (sender locked, or put on hold), by reason.', { reason }, ofReason.reduce((sum, item) => sum + item.count, 0));
    metrics.set(
      'outpost_queue_held_overdue',
      "Held messages held longer than the queue's lifetime (the retry schedule's total); they stay held until released or purged.",
      { reason },
      ofReason.reduce((sum, item) => sum + item.overdue, 0),
    );
  }
  const locked = await stores.lockStore.listLocked({});
  metrics.set('outpost_locked_users', 'Users locked now, by kind of lock.', { kind: 'temporary' }, locked.filter((l) => !l.permanent).length);
  metrics.set('outpost_locked_users', 'Users locked now, by kind of lock.', { kind: 'permanent' }, locked.filter((l) => l.permanent).length);
}
