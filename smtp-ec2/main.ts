// The ingress container's entry (smtp-ec2/Dockerfile): the SMTP listeners on high ports (the NLB
// maps 587, 465 and 25 to them), and an HTTP health endpoint for the NLB's target groups.
// On SIGTERM (ECS stopping the task, after the NLB has deregistered it) the health check turns
// 503, new SMTP commands get 421, and sessions in flight get OUTPOST_CLOSE_TIMEOUT_SECONDS to
// finish, inside ECS's stop timeout; then the process exits.
import { createServer, type Server } from 'node:http';
import { loadConfig, type Config } from '../core/config.js';
import { createLogger, errorMessage } from '../core/log.js';
import { startIngress, type IngressServices } from '../lambdas/aws-stores.js';
import { telemetry } from '../lambdas/entry.js';
import { METRIC, METRICS_NAMESPACE } from '../lambdas/metric-names.js';

const logger = createLogger('ingress-task');
const METRIC_INTERVAL_MS = 60_000;

type State = 'starting' | 'serving' | 'draining' | 'failed';
let state: State = 'starting';
let services: IngressServices | undefined;

/** TLS material arrives from Secrets Manager as environment variables; smtp-server wants buffers. */
function tlsFromEnvironment(): { key: Buffer; cert: Buffer } {
  const key = process.env.OUTPOST_TLS_KEY_PEM;
  const cert = process.env.OUTPOST_TLS_CERT_PEM;
  if (!key || !cert) throw new Error('OUTPOST_TLS_KEY_PEM and OUTPOST_TLS_CERT_PEM must be set (the TLS certificate secret)');
  return { key: Buffer.from(key), cert: Buffer.from(cert) };
}

function configWithDrainTime(): Config {
  const config = loadConfig();
  const closeTimeout = Number(process.env.OUTPOST_CLOSE_TIMEOUT_SECONDS ?? '');
  return Number.isInteger(closeTimeout) && closeTimeout > 0 ? { ...config, smtp: { ...config.smtp, closeTimeoutSeconds: closeTimeout } } : config;
}

/** One EMF line: CloudWatch Logs turns it into the metric the service's autoscaling tracks. */
function publishActiveSessions(count: number): void {
  const line = {
    _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: METRICS_NAMESPACE, Dimensions: [['Service']], Metrics: [{ Name: METRIC.activeSessions, Unit: 'Count' }] }] },
    Service: 'ingress',
    [METRIC.activeSessions]: count,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}

function startHealthServer(port: number): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url !== '/healthz') {
      response.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404 }));
      return;
    }
    const healthy = state === 'serving';
    response.writeHead(healthy ? 200 : 503, { 'content-type': healthy ? 'application/json' : 'application/problem+json' });
    response.end(JSON.stringify(healthy ? { status: 'ok' } : { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: `ingress is ${state}` }));
  });
  server.on('error', (error: unknown) => logger.error('health endpoint error', { error: errorMessage(error) }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, process.env.OUTPOST_LISTEN_ADDRESS ?? '0.0.0.0', () => resolve(server));
  });
}

async function main(): Promise<void> {
  const config = configWithDrainTime();
  // Session metrics (transactions, admission latency, locks) as EMF; no invocation ends here to
  // flush the batch, so the metrics timer flushes it.
  const { metrics, entryMetrics } = telemetry('ingress');
  const flushMetrics = (): void => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  const health = await startHealthServer(config.http.port);
  const address = health.address();
  logger.info('health endpoint listening', { port: typeof address === 'object' && address ? address.port : config.http.port });

  let metricsTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info('draining: no new sessions; sessions in flight may finish', { signal, closeTimeoutSeconds: config.smtp.closeTimeoutSeconds });
      state = 'draining';
      clearInterval(metricsTimer);
      flushMetrics();
      await services?.close().catch((error: unknown) => logger.error('closing the SMTP listeners failed', { error: errorMessage(error) }));
      await new Promise<void>((resolve) => health.close(() => resolve()));
      logger.info('stopped');
    })();
    return stopping;
  };
  process.once('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
  process.once('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));

  try {
    services = await startIngress(config, tlsFromEnvironment(), { metrics: entryMetrics });
  } catch (error: unknown) {
    // The health check stays 503, so the NLB sends nothing here and ECS replaces the task.
    state = 'failed';
    logger.error('ingress could not start', { error: errorMessage(error) });
    return;
  }
  if (state !== 'starting') return;
  state = 'serving';
  const started = services;
  metricsTimer = setInterval(() => {
    publishActiveSessions(started.activeSessions());
    flushMetrics();
  }, METRIC_INTERVAL_MS);
  metricsTimer.unref();
  logger.info('ingress serving', { submission: config.smtp.port, submissions: config.smtp.smtpsPort, bounce: config.smtp.bouncePort });
}

main().catch((error: unknown) => {
  logger.error('ingress task failed', { error: errorMessage(error) });
  process.exit(1);
});
