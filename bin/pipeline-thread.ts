// Starts the pipeline (bin/pipeline.ts) in a worker thread and speaks to it: the relay's thread
// nudges it when it queues something and asks it to stop; the worker sends back the metrics it
// counts. A worker that dies (an uncaught error, out of memory) is logged and started again after
// a second: accepted mail must not wait for a restart of the relay. The new worker first makes the
// messages the dead one had received visible again (it is the queues' only consumer), so they
// need not wait out their visibility timeout either. A worker that keeps dying soon after it
// starts (a database it cannot open) waits twice as long before each further start, up to a
// minute, instead of loading the whole pipeline every second.
// A worker that hangs instead of dying (its event loop blocked: a scan that never ends on a
// crafted message, a regular expression gone catastrophic, a native call that never returns)
// would park every accepted message without a word. So the worker posts a heartbeat every second
// (a timer on its event loop: a blocked loop stops it) with the records it has in hand; when none
// came for queue.threadWatchdogSeconds, the worker is logged as hung with what it last had in
// hand, terminated, and started again as after a death: its messages in flight are received
// again, and one that hangs every thread that takes it reaches queue.maxReceives and goes to its
// dead-letter queue (logged and counted by watchDeadLetters in the new worker).
import { Worker } from 'node:worker_threads';
import type { Config } from '../core/config.js';
import { errorMessage } from '../core/log.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { CounterName, HistogramName } from '../core/metric-names.js';
import type { Logger } from '../core/ports.js';
import type { RecordInHand } from '../adapters/local/poller.js';
import { BurstDeferral, INGRESS_QUEUE } from '../adapters/local/burst-deferral.js';
import { Watchdog } from '../adapters/local/thread-restarts.js';
import type { Pipeline } from './pipeline.js';

/** From the relay's thread to the worker. */
export type RelayMessage = { kind: 'nudge'; queue: string } | { kind: 'stop' };
/** From the worker to the relay's thread. */
export type PipelineMessage =
  | { kind: 'started' }
  | { kind: 'stopped' }
  /** The heartbeat (every second, or every quarter of queue.threadWatchdogSeconds if shorter; none when it is 0), with the records in hand. */
  | { kind: 'alive'; inHand: RecordInHand[] }
  /** The metrics the worker counted in one turn of its event loop, in order. */
  | { kind: 'metrics'; events: MetricEvent[] };

/** One count or observation, as it crosses to the relay's thread. */
export type MetricEvent =
  | { kind: 'metric'; name: CounterName; labels: Record<string, string>; by: number }
  | { kind: 'observe'; name: HistogramName; seconds: number; labels: Record<string, string> };

const RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 60_000;
/** A worker that ran its pipeline this long before it died was working: the next restart waits the first delay again. */
const STABLE_AFTER_MS = 60_000;
/** How long a stop waits for the worker to finish the records in hand before it is terminated. */
const STOP_TIMEOUT_MS = 60_000;

export interface PipelineThreadOptions {
  config: Config;
  logger: Logger;
  metrics: MetricRecorder;
  mxPort?: number;
  /**
   * Waits before restarting a dead worker: `first`, doubled for each further death of a worker
   * that ran its pipeline less than `stableAfter` (or never started it), up to `max`. Tests shorten them.
   */
  restartDelayMs?: { first: number; max: number; stableAfter: number };
}

export function pipelineThread(options: PipelineThreadOptions): Pipeline {
  const { logger, metrics } = options;
  const watchdogMs = options.config.queue.threadWatchdogSeconds * 1000;
  let worker: Worker | undefined;
  let stopping = false;
  let stopped: (() => void) | undefined;
  /** The queues something was queued on in this turn of the event loop. */
  const nudged = new Set<string>();
  // The ingress's burst count, shared with every worker this starts: counted here, read by its scan poller.
  const burstMemory = BurstDeferral.sharedMemory();
  const burst = new BurstDeferral(options.config.queue.burstDeferSeconds * 1000, options.config.queue.burstMessagesPerSecond, undefined, burstMemory);
  const delays = options.restartDelayMs ?? { first: RESTART_DELAY_MS, max: MAX_RESTART_DELAY_MS, stableAfter: STABLE_AFTER_MS };
  /** Deaths in a row of workers that died before their pipeline had run `delays.stableAfter`. */
  let earlyDeaths = 0;

  /** Starts a worker again after a wait; `lived` is how long the one that is gone ran its pipeline (0: it never started it). */
  const restartLater = (message: string, fields: Record<string, unknown>, lived: number): void => {
    earlyDeaths = lived >= delays.stableAfter ? 1 : earlyDeaths + 1;
    const inMs = Math.min(delays.max, delays.first * 2 ** (earlyDeaths - 1));
    logger.error(message, { ...fields, inMs });
    setTimeout(() => {
      if (!stopping) spawn(true);
    }, inMs).unref();
  };

  const spawn = (afterDeath: boolean): void => {
    let current: Worker;
    try {
      current = new Worker(new URL('./pipeline-worker.mjs', import.meta.url), {
        workerData: { config: options.config, mxPort: options.mxPort, recoverInFlight: afterDeath, burstMemory },
      });
    } catch (error: unknown) {
      // At start the node's start fails and says why. A restart runs in a timer on the relay's
      // thread: thrown on, the error would end the relay and every session in it.
      if (!afterDeath) throw error;
      return restartLater('cannot start the pipeline worker thread; trying again', { error: errorMessage(error) }, 0);
    }
    /** When the worker said it had started its pipeline. */
    let runningSince: number | undefined;
    worker = current;
    /** What the worker had in hand at its last heartbeat: what it was doing when it hung, if it hung. */
    let lastInHand: RecordInHand[] = [];
    // Set once the watchdog has given up on it: terminated, and its successor already on the way.
    let hung = false;
    const watchdog = new Watchdog(watchdogMs, (silentMs) => {
      if (worker !== current) return;
      hung = true;
      worker = undefined;
      const now = Date.now();
      const fields = {
        silentMs: Math.round(silentMs),
        watchdogMs,
        threadId: current.threadId,
        phase: stopping ? 'stopping' : runningSince === undefined ? 'starting' : 'running',
        inHand: lastInHand.map((record) => ({ ...record, forMs: now - record.since })),
      };
      // Interrupts JavaScript at once. A native call that never returns keeps its thread, but
      // terminate() is pending: the thread ends when the call does, before it runs anything more.
      void current.terminate().catch(() => undefined);
      if (stopping) {
        logger.error('pipeline worker thread hung while stopping (no heartbeat); terminated', fields);
        return stopped?.();
      }
      restartLater('pipeline worker thread hung (no heartbeat); terminated, starting it again', fields, runningSince === undefined ? 0 : now - runningSince);
    });
    watchdog.watch();
    current.on('message', (message: PipelineMessage) => {
      if (hung) return;
      watchdog.heard();
      if (message.kind === 'alive') lastInHand = message.inHand;
      // Names and labels come from the same table on both threads (core/metric-names.ts).
      if (message.kind === 'metrics') {
        for (const event of message.events) {
          if (event.kind === 'metric') (metrics.inc as (name: CounterName, labels: Record<string, string>, by: number) => void)(event.name, event.labels, event.by);
          else (metrics.observe as (name: HistogramName, seconds: number, labels: Record<string, string>) => void)(event.name, event.seconds, event.labels);
        }
      }
      if (message.kind === 'started') {
        runningSince = Date.now();
        logger.info('pipeline worker thread started', { threadId: current.threadId });
      }
      if (message.kind === 'stopped') stopped?.();
    });
    let cause: unknown;
    current.on('error', (error: unknown) => {
      cause = error;
      logger.error('pipeline worker thread failed', { error: errorMessage(error), stack: error instanceof Error ? error.stack : undefined });
    });
    current.on('exit', (code) => {
      watchdog.stop();
      // Logged, and started again, when the watchdog gave up on it.
      if (hung) return;
      if (worker === current) worker = undefined;
      if (stopping) return stopped?.();
      restartLater('pipeline worker thread exited; starting it again', { code, ...(cause === undefined ? {} : { error: errorMessage(cause) }) }, runningSince === undefined ? 0 : Date.now() - runningSince);
    });
  };

  return {
    start: () => {
      if (!worker) spawn(false);
    },
    // One nudge per queue and turn of the event loop: a burst queues hundreds of messages a turn,
    // and the worker only needs to know that there is work. What the ingress queues is counted in
    // the memory the worker's scan poller reads (its burst deferral); during a burst that poller
    // leaves young messages where they are and looks again on its own (within queue.pollIntervalMs,
    // then every DEFER_POLL_MS once it defers), so the worker is not woken for them at all.
    nudge: (queue, count = 1) => {
      if (queue === INGRESS_QUEUE) burst.queued(count);
      if (nudged.size === 0) {
        setImmediate(() => {
          for (const name of nudged) {
            if (name === INGRESS_QUEUE && burst.minAgeMs() > 0) continue;
            worker?.postMessage({ kind: 'nudge', queue: name } satisfies RelayMessage);
          }
          nudged.clear();
        });
      }
      nudged.add(queue);
    },
    async stop() {
      stopping = true;
      const current = worker;
      if (!current) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn('pipeline worker thread did not stop in time; terminating it', { timeoutMs: STOP_TIMEOUT_MS });
          void current.terminate().then(() => resolve());
        }, STOP_TIMEOUT_MS);
        stopped = () => {
          clearTimeout(timer);
          resolve();
        };
        current.postMessage({ kind: 'stop' } satisfies RelayMessage);
      });
      await current.terminate().catch(() => undefined);
    },
  };
}
