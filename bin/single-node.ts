// The single-node deployment (`npm start`): the same ingress, the same pipeline handlers and the
// same API as on AWS, in one process, on SQLite and the filesystem, delivering by SMTP.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { mkdir } from 'node:fs/promises';
import type { Config } from '../core/config.js';
import { createLogger, errorMessage } from '../core/log.js';
import type { Clock, Envelope, Logger } from '../core/ports.js';
import { systemClock } from '../core/ports.js';
import { perRecord, type SqsHandler } from '../core/sqs-event.js';
import { createResolver } from '../adapters/local/dns.js';
import { Poller } from '../adapters/local/poller.js';
import { operatorToken, tlsMaterial } from '../adapters/local/secrets.js';
import { deliverJob, makeDeliverHandler } from '../lambdas/deliver/handler.js';
import { Ingress } from '../smtp-ec2/ingress.js';
import { openLocalStores, type LocalStores } from './local-stores.js';

export interface RunningNode {
  ports: { submission: number; submissions: number; bounce: number; http: number };
  operatorToken: { token: string; created: boolean; path?: string };
  certPath: string;
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

export async function startNode(config: Config, options: NodeOptions = {}): Promise<RunningNode> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger('outpost');
  await mkdir(config.dataDir, { recursive: true });
  const stores = openLocalStores(config, clock);
  const token = await operatorToken(config.dataDir, config.operatorToken);
  const tls = await tlsMaterial(config.dataDir, config.hostname, { keyFile: config.smtp.tlsKeyFile, certFile: config.smtp.tlsCertFile });
  const resolver = createResolver(config.dns);

  const pollers: Poller[] = [];
  const poller = (queueName: string, handler: SqsHandler): Poller => {
    const created = new Poller({
      queue: stores.queue,
      queueName,
      handler,
      batchSize: config.queue.batchSize,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      pollIntervalMs: config.queue.pollIntervalMs,
      logger: createLogger(`poller.${queueName}`),
    });
    pollers.push(created);
    return created;
  };

  const deliverPoller = poller(
    'deliver',
    makeDeliverHandler({ blobs: stores.blobs, queue: stores.queue, log: stores.log, config, resolver, logger: createLogger('deliver'), clock, mxPort: options.mxPort }),
  );
  const scanPoller = poller(
    'scan',
    perRecord(
      async (record) => {
        const envelope = JSON.parse(record.body) as Envelope;
        await stores.queue.send('deliver', JSON.stringify(deliverJob(envelope)));
        deliverPoller.nudge();
      },
      (record, error) => logger.error('scan failed', { record: record.messageId, error: errorMessage(error) }),
    ),
  );

  const ingress = new Ingress({
    config,
    configStore: stores.configStore,
    blobs: stores.blobs,
    queue: stores.queue,
    log: stores.log,
    logger: createLogger('ingress'),
    clock,
    tls,
    onQueued: () => scanPoller.nudge(),
  });
  const smtpPorts = await ingress.listen(config.listenAddress, { submission: config.smtp.port, submissions: config.smtp.smtpsPort });

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  const http = await new Promise<{ server: ServerType; port: number }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: config.http.port, hostname: config.listenAddress }, (info) => resolve({ server, port: info.port }));
    server.once('error', reject);
  });

  for (const item of pollers) item.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping: no new connections; sessions in flight may finish', { closeTimeoutSeconds: config.smtp.closeTimeoutSeconds });
      await ingress.close();
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await Promise.all(pollers.map((item) => item.stop()));
      stores.close();
      logger.info('stopped');
    })();
    return stopping;
  };

  return {
    ports: { ...smtpPorts, bounce: 0, http: http.port },
    operatorToken: token,
    certPath: tls.certPath,
    stores,
    stop,
  };
}
