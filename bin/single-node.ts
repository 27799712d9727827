// The single-node deployment (`npm start`): the same ingress, the same pipeline handlers and the
// same API as on AWS, in one process, on SQLite and the filesystem, delivering by SMTP.
import { join } from 'node:path';
import { makeAdmissionPolicy } from '../core/app/admission-policy.js';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { Config } from '../core/config.js';
import type { CounterStore } from '../core/counters.js';
import { createLogger, errorMessage } from '../core/log.js';
import { Metrics, type MetricRecorder } from '../core/metrics.js';
import type { Clock, Logger } from '../core/ports.js';
import { QUEUE_NAMES, systemClock } from '../core/ports.js';
import { purgeExpired } from '../core/housekeeping.js';
import { createResolver } from '../adapters/local/dns.js';
import { ThreadedCounterStore } from '../adapters/local/counter-thread.js';
import { MemoryCounterStore } from '../adapters/local/memory-counter-store.js';
import { RelayCounterStore } from '../adapters/local/relay-counters.js';
import { lockDataFolder } from '../adapters/local/data-folder-lock.js';
import { RATE_LIMIT_KEY_PREFIXES } from '../core/policy/keys.js';
import { ThreadedAcceptanceBatch } from '../adapters/local/acceptance-thread.js';
import { RestartBackoff } from '../adapters/local/thread-restarts.js';
import { ensurePrivateDir } from '../adapters/local/private-files.js';
import { metricsAccess } from './metrics-access.js';
import { collectGauges } from './scrape-gauges.js';
import { operatorToken, tlsMaterial } from '../adapters/local/secrets.js';
import { enginesFromConfig } from '../adapters/scan/from-config.js';
import { deliverJobSchema } from '../core/app/deliver-job.js';
import { bodyReader } from '../adapters/local/damaged-entries.js';
import { envelopeSchema } from '../core/envelope.js';
import { scanStartupWarnings } from '../lambdas/scan/handler.js';
import { buildPipeline } from './pipeline.js';
import { pipelineThread } from './pipeline-thread.js';
import { purgeOrphanBounces } from '../core/bounce/housekeeping.js';
import { queueLifetimeMs } from '../core/holds.js';
import { createApiApp } from '../lambdas/api/app.js';
import { webRoutes } from '../web/serve.js';
import { createListeners } from '../smtp-ec2/listeners.js';
import { openLocalStores, withCachedConfigReads, withCachedCounterReads, type LocalStores } from './local-stores.js';

export interface RunningNode {
  ports: { submission: number; submissions: number; bounce: number; http: number };
  operatorToken: { token: string; created: boolean; path?: string };
  certPath: string;
  warnings: string[];
  stores: LocalStores;
  /** The counters as the relay's checks use them: the rate limits in memory, the others in `stores` (relay-counters.ts). */
  counters: CounterStore;
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

/** Longest wait for one step of undoing a start that failed half-way. */
const UNDO_STEP_TIMEOUT_MS = 5000;

export async function startNode(config: Config, options: NodeOptions = {}): Promise<RunningNode> {
  // A start that fails half-way (a port in use) gives back what it opened: listeners and worker
  // threads left running would keep the process alive after `outpost start` reported the error.
  const undo: Array<() => unknown> = [];
  try {
    return await startNodeParts(config, options, undo);
  } catch (error: unknown) {
    for (const step of undo.reverse()) {
      const stepDone = Promise.resolve().then(step).catch(() => undefined);
      await Promise.race([stepDone, new Promise((resolve) => setTimeout(resolve, UNDO_STEP_TIMEOUT_MS).unref())]);
    }
    throw error;
  }
}

async function startNodeParts(config: Config, options: NodeOptions, undo: Array<() => unknown>): Promise<RunningNode> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger('outpost');
  ensurePrivateDir(config.dataDir);
  // One relay per data folder: its rate-limit counters live in its memory (relay-counters.ts).
  const folderLock = lockDataFolder(config.dataDir);
  undo.push(() => folderLock.release());
  const stores = openLocalStores(config, clock);
  undo.push(() => stores.close());
  const token = await operatorToken(config.dataDir, config.operatorToken);
  const tls = await tlsMaterial(config.dataDir, config.hostname, { keyFile: config.smtp.tlsKeyFile, certFile: config.smtp.tlsCertFile });
  // Delivery asks DNS afresh each time; the admission checks use a cache (dns.cacheSeconds).
  const resolver = createResolver({ ...config.dns, cacheSeconds: 0 });
  const metrics = new Metrics({ processMetrics: true });
  watchDeadLetters(stores, metrics, logger);

  // The relay thread's rate-limit counters run in a worker thread of their own (counter-thread.ts):
  // their SQLite transactions no longer stop every session while they run.
  // A worker thread that hangs (no answer for queue.threadWatchdogSeconds with work in hand) is terminated and replaced.
  const watchdogMs = config.queue.threadWatchdogSeconds * 1000;
  const counterThread = new ThreadedCounterStore(join(config.dataDir, 'outpost.db'), createLogger('counters'), clock, new RestartBackoff(), watchdogMs);
  undo.push(() => counterThread.close(0));
  // The rate limits at RCPT, reserved and settled for every message, in the relay's memory and
  // written to the database once a second; the other counters in SQLite (relay-counters.ts).
  const relayCounters = new RelayCounterStore(new MemoryCounterStore(clock), counterThread, RATE_LIMIT_KEY_PREFIXES, createLogger('counters'));
  undo.push(() => relayCounters.close());
  // The group commit of accepted messages, in its writer thread (acceptance-thread.ts): its fsync
  // no longer stops every session while it runs.
  const acceptance = new ThreadedAcceptanceBatch(join(config.dataDir, 'outpost.db'), createLogger('acceptance'), clock, config.queue.maxReceives, new RestartBackoff(), watchdogMs);
  undo.push(() => acceptance.close(0));
  // Policy: limits, locks (and the mail they hold), sender rules, auth abuse, IP reputation; plus the suppression list.
  // The relay's per-message reads of users, tenants, domains and locks come from memory until
  // something changes them (the API below reads and writes the stores directly).
  const relayStores = withCachedConfigReads(stores);
  const { locks, holds, policy } = makeAdmissionPolicy({
    // The buckets read for every new session (IP reputation, blocks after failed logins) from
    // memory as well, until something changes them (counter-reads.ts).
    stores: { ...relayStores, counters: withCachedCounterReads(stores, relayCounters, clock) },
    config,
    clock,
    resolver: createResolver(config.dns),
    onLockEvent: (event) => metrics.inc('outpost_lock_events_total', { kind: event.kind }),
  });
  // scan, deliver, bounce: in a worker thread of their own, unless the caller brings a clock
  // (tests that move time), which cannot cross to another thread.
  const engines = enginesFromConfig(config.scanning);
  const warnings = scanStartupWarnings(engines);
  for (const warning of warnings) logger.warn(warning);
  const inThread = config.queue.pipelineWorker && options.clock === undefined;
  const pipeline = inThread
    ? pipelineThread({ config, logger, metrics, mxPort: options.mxPort })
    : buildPipeline({ config, stores, clock, resolver, policy, holds, metrics, mxPort: options.mxPort });
  const nudge = (queueName: string): void => pipeline.nudge(queueName);

  // The queue is checked before any listener opens: after an outage it may hold thousands of
  // entries, and clients arriving meanwhile would only slow the check (and the start) down.
  await setAsideDamaged(stores, config, logger, metrics, clock);
  await Promise.all([counterThread.start(), acceptance.start()]);
  await relayCounters.start();
  const recovered = stores.queue.recoverInFlight();
  if (recovered > 0) logger.warn('recovered messages that were in flight when the previous run stopped', { count: recovered });
  await reportDeadLetters(stores, logger);

  const { ingress, bounceListener } = createListeners({
    config,
    stores: relayStores,
    policy,
    clock,
    tls,
    metrics,
    onQueued: nudge,
    // Group commit: the messages that finish DATA together share one durable commit.
    recordAccepted: (message) => acceptance.record(message),
    // Small messages go into that commit too, instead of a file each (queue.inlineBodyBytes).
    recordsContent: true,
    // The IP user of each client from the same reads from memory, exact (no 5-second cache).
    ipUserLookup: (ip) => relayStores.configStore.findIpUser(ip),
  });
  undo.push(() => ingress.close());
  const smtpPorts = await ingress.listen(config.listenAddress, { submission: config.smtp.port, submissions: config.smtp.smtpsPort });

  undo.push(() => bounceListener.close());
  const bouncePort = await bounceListener.listen(config.listenAddress, config.smtp.bouncePort);

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/metrics', metricsAccess({ publicMetrics: config.http.publicMetrics, metricsToken: config.http.metricsToken, operatorToken: token.token }), async (c) => {
    await collectGauges(metrics, stores, ingress.activeSessions, queueLifetimeMs(config.delivery.retrySchedule));
    return c.text(await metrics.render(), 200, { 'content-type': metrics.contentType });
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

  if (config.delivery.attemptTimeoutSeconds >= config.queue.visibilityTimeoutSeconds) {
    logger.warn('delivery.attemptTimeoutSeconds is not below queue.visibilityTimeoutSeconds: a slow attempt may be received again and delivered twice', {
      attemptTimeoutSeconds: config.delivery.attemptTimeoutSeconds,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
    });
  }
  pipeline.start();

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
      await acceptance.close();
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await pipeline.stop();
      await relayCounters.close();
      await counterThread.close();
      stores.close();
      folderLock.release();
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
    counters: relayCounters,
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
 * Removes what has outlived its retention (core/housekeeping.ts, as on AWS) and, on the single
 * node only, orphan bounce files (on S3 a lifecycle rule does that). Runs every 10 minutes.
 */
export async function runHousekeeping(stores: LocalStores, config: Config, clock: Clock): Promise<void> {
  await purgeExpired(stores, config, clock);
  await purgeOrphanBounces(
    { blobs: stores.blobs, queuedBounceJobs: async () => stores.queue.bodies(['bounce', 'bounce-dlq']), clock, logger: createLogger('housekeeping') },
    config.bounces.orphanHours,
  );
}

/** Deals with queue entries damaged on disk (a bad body: set aside; a missing or garbled message file: set aside and bounced), so that they neither block start-up nor fail forever or in silence. */
async function setAsideDamaged(stores: LocalStores, config: Config, logger: Logger, metrics: Metrics, clock: Clock): Promise<void> {
  const envelopeBody = bodyReader(envelopeSchema, (envelope) => envelope);
  const { damaged, unchecked } = await stores.database.setAsideDamagedEntries({
    dataDir: config.dataDir,
    now: clock.now(),
    readers: { scan: envelopeBody, bounce: envelopeBody, deliver: bodyReader(deliverJobSchema, (job) => job.envelope) },
  });
  for (const entry of damaged) {
    logger.error(entry.action === 'bounced' ? 'damaged message file set aside; the message bounces to its sender' : 'damaged queue entry set aside', { ...entry, see: 'npx outpost queue status' });
    metrics.inc('outpost_damaged_entries_total', { queue: entry.queue });
    if (entry.messageId) await stores.log.addEvent(entry.messageId, 'damaged', { reason: entry.reason, movedTo: entry.movedBlob }).catch((error: unknown) => logger.warn('recording the set-aside event failed', { id: entry.messageId, error: errorMessage(error) }));
  }
  for (const entry of unchecked) logger.warn('queue entry could not be checked at start-up; left in place', entry);
}

/**
 * The operator's alert for a message that ends in a dead-letter queue: an error line naming it
 * and a counter. The cause (a bug, a store down for long) needs a person; once it is fixed,
 * `npx outpost queue redrive` (or POST /v1/queues/{queue}/redrive) moves the messages back.
 */
export function watchDeadLetters(stores: Pick<LocalStores, 'queue'>, metrics: MetricRecorder, logger: Logger): void {
  stores.queue.onDeadLetter((deadLetter) => {
    logger.error('message moved to the dead-letter queue; fix the cause, then run: npx outpost queue redrive ' + deadLetter.queue, {
      queue: deadLetter.queue,
      deadLetterQueue: `${deadLetter.queue}-dlq`,
      queueMessageId: deadLetter.queueMessageId,
      receiveCount: deadLetter.receiveCount,
      ...(deadLetter.messageId !== undefined ? { messageId: deadLetter.messageId } : {}),
    });
    metrics.inc('outpost_dead_letters_total', { queue: deadLetter.queue });
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
