// The deliver stage as a long-running worker, for direct delivery to MX hosts on port 25 (`mx`
// mode): Lambda cannot connect to port 25, so this runs in the ingress image as an ECS service
// whose traffic leaves through the NAT gateways' Elastic IPs. It polls the same `deliver` queue
// and runs the same handler as the Lambda, honouring its partial batch answer.
import { Poller } from '../../adapters/local/poller.js';
import { createLogger, errorMessage } from '../../core/log.js';
import { deliverDeps } from '../aws-stores.js';
import { emfRecorder } from '../emf-recorder.js';
import { telemetry } from '../entry.js';
import { makeDeliverHandler } from './handler.js';

const logger = createLogger('deliver-worker');
/** Six times the longest attempt, as for the Lambda's queue (lib/constructs/pipeline.ts). */
const VISIBILITY_TIMEOUT_SECONDS = 720;
/** No invocation ends here to flush the EMF batch: it is flushed on a timer instead. */
const METRICS_FLUSH_MS = 60_000;

async function main(): Promise<void> {
  const { metrics } = telemetry('deliver');
  const flush = setInterval(() => metrics.hasStoredMetrics() && metrics.publishStoredMetrics(), METRICS_FLUSH_MS);
  flush.unref();
  const recorder = emfRecorder(metrics);
  const deps = await deliverDeps({ ...recorder, locked: (userId, tenantId) => logger.warn('user locked automatically', { userId, tenantId }) });
  const poller = new Poller({
    queue: deps.queue,
    queueName: 'deliver',
    handler: makeDeliverHandler({ ...deps, metrics: recorder }),
    batchSize: 10,
    visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_SECONDS,
    pollIntervalMs: 1000,
    logger,
  });
  poller.start();
  logger.info('deliver worker polling');
  const stop = (signal: string): void => {
    logger.info('stopping: the batch in hand finishes, nothing new is received', { signal });
    poller.stop().then(
      () => {
        if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('stopping failed', { error: errorMessage(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  logger.error('deliver worker could not start', { error: errorMessage(error) });
  process.exit(1);
});
