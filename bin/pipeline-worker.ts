// The pipeline in a worker thread of the single node (see pipeline-thread.ts, which starts it).
// It opens its own SQLite connection (WAL lets threads share the database, as the CLI does) and
// builds its own stores, locks and abuse counters on it: none of them keeps state in memory, so
// the ingress and the pipeline see the same values. Metrics it counts go to the relay's thread,
// which serves /metrics.
import { makeAdmissionPolicy } from '../core/app/admission-policy.js';
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../core/config.js';
import { createLogger, errorMessage } from '../core/log.js';
import { incArgs, type MetricRecorder } from '../core/metrics.js';
import { systemClock } from '../core/ports.js';
import { createResolver } from '../adapters/local/dns.js';
import { openLocalStores, withCachedConfigReads } from './local-stores.js';
import { buildPipeline } from './pipeline.js';
import { niceThisThread } from './thread-priority.js';
import { logUnhandledRejections, watchDeadLetters } from './single-node.js';
import type { MetricEvent, PipelineMessage, RelayMessage } from './pipeline-thread.js';
import type { RecordInHand } from '../adapters/local/poller.js';

const port = parentPort;
if (!port) throw new Error('bin/pipeline-worker.ts runs as a worker thread (bin/pipeline-thread.ts starts it)');
const { config, mxPort, recoverInFlight, burstMemory } = workerData as { config: Config; mxPort?: number; recoverInFlight?: boolean; burstMemory?: SharedArrayBuffer };
const logger = createLogger('pipeline');
// As on the main thread: a rejected promise nobody handled is logged, not the end of the worker.
logUnhandledRejections(logger);
const post = (message: PipelineMessage): void => port.postMessage(message);
// The heartbeat the relay's watchdog listens for (pipeline-thread.ts), with the records in hand:
// a timer on this thread's event loop, so a loop that is blocked stops it. At least four per
// watchdog period, so that one slow turn is never taken for a hang.
let inHand: () => RecordInHand[] = () => [];
const heartbeatMs = Math.min(1000, config.queue.threadWatchdogSeconds * 250);
const heartbeat = heartbeatMs > 0 ? setInterval(() => post({ kind: 'alive', inHand: inHand() }), heartbeatMs) : undefined;
// It must not keep the thread alive once the port is closed.
heartbeat?.unref();
// The worker's metrics go to the relay's thread, which serves /metrics: those of one turn of the
// event loop in one message (a delivered message counts half a dozen), not one message each.
let metricEvents: MetricEvent[] = [];
const count = (event: MetricEvent): void => {
  metricEvents.push(event);
  if (metricEvents.length === 1) setImmediate(flushMetrics);
};
function flushMetrics(): void {
  if (metricEvents.length === 0) return;
  const events = metricEvents;
  metricEvents = [];
  post({ kind: 'metrics', events });
}
const metrics: MetricRecorder = {
  inc: (name, ...args) => count({ kind: 'metric', name, ...incArgs(args) }),
  observe: (name, seconds, labels) => count({ kind: 'observe', name, seconds, labels: (labels ?? {}) as Record<string, string> }),
};

// Below the SMTP sessions: under a burst they come first, and the queue absorbs the difference.
const niced = niceThisThread(config.queue.pipelineNice);
if ('error' in niced) logger.warn('cannot lower the pipeline thread\'s priority; it shares the CPU evenly with the SMTP sessions', { nice: config.queue.pipelineNice, error: niced.error });

// The users, tenants, domains and locks each message needs come from memory until something
// changes them (config-reads.ts: dropped within a turn of any connection's change).
const stores = withCachedConfigReads(openLocalStores(config, systemClock));
if (recoverInFlight) {
  // Started again after a worker died: what it had received is nobody's now (this thread is the
  // queues' only consumer), and need not wait out the visibility timeout.
  const recovered = stores.queue.recoverInFlight();
  if (recovered > 0) logger.warn('made the messages the dead pipeline worker had in flight visible again', { count: recovered });
}
// Delivery asks DNS afresh each time (the admission checks' cache is the ingress's).
const resolver = createResolver({ ...config.dns, cacheSeconds: 0 });
const { holds, policy } = makeAdmissionPolicy({
  stores,
  config,
  clock: systemClock,
  resolver,
  onLockEvent: (event) => metrics.inc('outpost_lock_events_total', { kind: event.kind }),
});
// Messages move to a dead-letter queue when this thread receives them once too often.
watchDeadLetters(stores, metrics, logger);
const pipeline = buildPipeline({ config, stores, clock: systemClock, resolver, policy, holds, metrics, mxPort, burstMemory });
inHand = () => pipeline.inHand?.() ?? [];

let stopping = false;
port.on('message', (message: RelayMessage) => {
  if (message.kind === 'nudge') pipeline.nudge(message.queue);
  if (message.kind === 'stop' && !stopping) {
    stopping = true;
    pipeline
      .stop()
      .catch((error: unknown) => logger.error('pipeline stop failed', { error: errorMessage(error) }))
      .finally(() => {
        stores.close();
        flushMetrics();
        clearInterval(heartbeat);
        post({ kind: 'stopped' });
        port.close();
      });
  }
});
pipeline.start();
post({ kind: 'started' });
