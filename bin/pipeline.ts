// The single node's pipeline: the scan, deliver and bounce pollers with the same handlers as the
// Lambdas, built on one set of stores. It runs in the relay's process (tests that move the clock)
// or in a worker thread of its own (bin/pipeline-worker.ts), so that scanning, signing and
// delivering use the second core and never hold up the ingress's event loop.
import type { Config } from '../core/config.js';
import { createLogger } from '../core/log.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { Clock, Resolver } from '../core/ports.js';
import { userSettings } from '../core/stores.js';
import type { SqsHandler } from '../core/sqs-event.js';
import { BurstDeferral, INGRESS_QUEUE } from '../adapters/local/burst-deferral.js';
import { Poller, SuspectGate, type RecordInHand } from '../adapters/local/poller.js';
import { makeDeliverHandler } from '../lambdas/deliver/handler.js';
import { DeliveryScheduler } from '../core/delivery/scheduler.js';
import { makeScanHandler, scanHandlerDeps } from '../lambdas/scan/handler.js';
import { makeOutgoingPreparer } from '../core/dkim/sign.js';
import type { IngressPolicy } from '../core/policy/index.js';
import type { MailHolds } from '../core/holds.js';
import { makeHardBounceReaction } from '../core/app/hard-bounce.js';
import { preparedAndRecorded } from '../core/app/prepare-outgoing.js';
import { bounceHandlerDeps, makeBounceHandler } from '../lambdas/bounce/handler.js';
import { countingRecords } from './record-metrics.js';
import type { LocalStores } from './local-stores.js';

export interface PipelineDeps {
  config: Config;
  stores: LocalStores;
  clock: Clock;
  resolver: Resolver;
  /** Verdicts and hard bounces feed the abuse counters and locks. */
  policy: Pick<IngressPolicy, 'recordAbuse' | 'recordHardBounces'>;
  holds: MailHolds;
  metrics: MetricRecorder;
  /** Port of MX hosts for direct delivery (25); tests point it at a local MX. */
  mxPort?: number;
  /**
   * The ingress's burst count, in memory the relay's thread counts into (BurstDeferral): given in
   * the worker thread, whose nudges then count nothing. Without it the pipeline counts the nudges.
   */
  burstMemory?: SharedArrayBuffer;
}

export interface Pipeline {
  start(): void;
  /** A producer has just queued `count` (1 if not given) messages on `queueName`: poll it now (unless the scan queue defers during a burst). */
  nudge(queueName: string, count?: number): void;
  /** The records being handled now, of every queue (what the pipeline thread's heartbeat reports). */
  inHand?(): RecordInHand[];
  /** Lets records in hand finish, then closes the outbound sessions kept for reuse. */
  stop(): Promise<void>;
}

export function buildPipeline(deps: PipelineDeps): Pipeline {
  const { config, stores, clock, resolver, policy, holds, metrics } = deps;
  const settingsFor = (userId: string) => userSettings(stores.configStore, userId, config.defaults);
  const hardBounce = makeHardBounceReaction({
    suppression: stores.suppression,
    clock,
    countInvalidRecipient: (userId, recipient) => policy.recordHardBounces(userId, 1, { recipient }),
  });

  const pollers = new Map<string, Poller>();
  // One for all the pollers of this thread: a record received more than once runs alone among them all.
  const gate = new SuspectGate();
  // The ingress queues on 'scan': what it queues there makes a burst, during which new messages
  // wait there (queue.burstDeferSeconds). Bounces and the pipeline's own queues count for nothing.
  const burst = new BurstDeferral(config.queue.burstDeferSeconds * 1000, config.queue.burstMessagesPerSecond, undefined, deps.burstMemory);
  const poller = (queueName: string, handler: SqsHandler, concurrency?: number): Poller => {
    const created = new Poller({
      concurrency,
      gate,
      minAgeMs: queueName === INGRESS_QUEUE ? () => burst.minAgeMs() : undefined,
      queue: stores.queue,
      queueName,
      handler: countingRecords(queueName, handler, metrics),
      batchSize: config.queue.batchSize,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      pollIntervalMs: config.queue.pollIntervalMs,
      logger: createLogger(`poller.${queueName}`),
    });
    pollers.set(queueName, created);
    return created;
  };
  const nudge = (queueName: string, count = 1): void => {
    if (queueName === INGRESS_QUEUE && !deps.burstMemory) burst.queued(count);
    pollers.get(queueName)?.nudge();
  };

  // deliver: DKIM-sign, BATV-tag, send by SMTP, retry, bounce.
  const preparer = makeOutgoingPreparer({
    keys: stores.dkimKeys,
    settingsFor: (envelope) => settingsFor(envelope.userId),
    tenantOfDomain: async (domain) => (await stores.configStore.getDomain(domain))?.tenantId,
    batvKeys: stores.batvKeys,
    directSmtp: true,
    clock,
  });
  // Shared by every delivery job: per-destination slots and the outbound sessions kept for reuse.
  const deliveryScheduler = DeliveryScheduler.fromConfig(config, createLogger('deliver'));
  poller(
    'deliver',
    makeDeliverHandler({
      scheduler: deliveryScheduler,
      blobs: stores.blobs,
      queue: stores.pipelineQueue,
      log: stores.log,
      config,
      resolver,
      logger: createLogger('deliver'),
      clock,
      mxPort: deps.mxPort,
      prepare: preparedAndRecorded(preparer, stores.log),
      onHardBounce: (envelope, recipient, diagnostic) => hardBounce({ tenantId: envelope.tenantId, userId: envelope.userId, recipient, reason: diagnostic }),
      holds,
      metrics,
    }),
    // Jobs one by one as slots free: a dead destination holds only its own jobs.
    config.delivery.concurrency,
  );

  // bounce: DSNs accepted by the bounce listener, attributed, suppressed, forwarded.
  poller(
    'bounce',
    makeBounceHandler(bounceHandlerDeps({ stores, config, policy, settingsFor, metrics })),
  );

  // scan: virus, spam, fingerprints; verdicts feed the abuse counters.
  const scanHandler = makeScanHandler(scanHandlerDeps({ stores: { ...stores, queue: stores.pipelineQueue }, config, policy, holds, settingsFor, metrics }));
  poller('scan', async (event) => {
    const response = await scanHandler(event);
    nudge('deliver');
    return response;
  });

  return {
    start: () => {
      for (const item of pollers.values()) item.start();
    },
    nudge,
    inHand: () => [...pollers.values()].flatMap((item) => item.inHand()),
    async stop() {
      await Promise.all([...pollers.values()].map((item) => item.stop()));
      deliveryScheduler.close();
    },
  };
}
