// The single node's pipeline thread gives way to an ingress burst (queue.burstDeferSeconds): the
// relay counts what it queues in memory it shares with the worker thread, and while that comes to
// queue.burstMessagesPerSecond (100) or more within a second, the scan poller in the worker thread
// leaves the new messages in the queue until they have waited the deferral. Meanwhile the relay
// does not wake the worker (a nudge per turn) for what it queues. A trickle is nudged and scanned
// at once, and 0 turns it off.
// Real worker thread, real database; when the scan poller first receives the message is read
// from the queue's own record (first_received_at).
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openLocalStores } from '../../bin/local-stores.js';
import { pipelineThread } from '../../bin/pipeline-thread.js';
import { parseConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import type { MetricRecorder } from '../../core/metrics.js';
import { waitFor } from '../helpers/net.js';

const metrics: MetricRecorder = { inc: () => undefined, observe: () => undefined };

describe('the pipeline thread during an ingress burst', () => {
  let dir: string;
  let stop: (() => Promise<void>) | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-pipeline-burst-'));
    vi.stubEnv('OUTPOST_LOG_LEVEL', 'error');
  });
  afterEach(async () => {
    await stop?.();
    stop = undefined;
    vi.unstubAllEnvs();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Starts the pipeline thread on the test's data folder (polling an empty queue every 5 s unless
   * `queue` says otherwise) and resolves once its worker runs: the worker loads its modules first
   * (seconds on a busy machine), and a nudge sent before it runs is seen only after its first receive.
   */
  async function startPipelineThread(queue: { burstDeferSeconds?: number; burstMessagesPerSecond?: number; pollIntervalMs?: number }) {
    const config = parseConfig({ dataDir: dir, hostname: 'relay.test', listenAddress: '127.0.0.1', queue: { pollIntervalMs: 5_000, ...queue } });
    const stores = openLocalStores(config);
    let started = false;
    const logger = createLogger('outpost', { level: 'info', write: (line) => (started ||= line.includes('pipeline worker thread started')) });
    const pipeline = pipelineThread({ config, logger, metrics });
    stop = async () => {
      await pipeline.stop();
      stores.close();
    };
    pipeline.start();
    await waitFor('the pipeline thread to start', async () => started, { timeoutMs: 30_000, intervalMs: 20 });
    return { pipeline, stores };
  }

  /**
   * Starts the pipeline thread, queues one message on 'scan', and goes on nudging as the ingress
   * does, once per message queued, `perTenth` times in each tenth of a second (a turn each; on a
   * busy machine the ticks come later, so the rate only falls); resolves with how long until the
   * scan poller received the message.
   */
  async function firstReceiveAfter(queue: { burstDeferSeconds?: number; burstMessagesPerSecond?: number; pollIntervalMs?: number }, perTenth: number, nudged = 'scan'): Promise<number> {
    const { pipeline, stores } = await startPipelineThread(queue);
    const db = new Database(join(dir, 'outpost.db'), { readonly: true });
    try {
      const ingress = setInterval(() => {
        for (let i = 0; i < perTenth; i += 1) pipeline.nudge(nudged);
      }, 100);
      try {
        // The rate builds up over the first second of the burst.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        const sentAt = Date.now();
        // Not an envelope: the scan fails it (and logs that), which leaves it in flight; only the receive is looked at.
        await stores.queue.send('scan', '{"not":"an envelope"}');
        pipeline.nudge('scan');
        const firstReceivedAt = (): number | null => (db.prepare("SELECT first_received_at AS at FROM queue_messages WHERE queue = 'scan'").get() as { at: number | null } | undefined)?.at ?? null;
        await waitFor('the scan poller to receive the message', async () => firstReceivedAt() !== null, { timeoutMs: 10_000, intervalMs: 20 });
        return (firstReceivedAt() ?? 0) - sentAt;
      } finally {
        clearInterval(ingress);
      }
    } finally {
      db.close();
    }
  }

  it('leaves a message queued during a burst until it has waited the deferral', async () => {
    // 500 messages a second: a burst even if the ticks come at a quarter of their pace. The poller
    // looks at the queue every 100 ms on its own (the relay does not nudge it during a burst): it
    // leaves the message only if it sees the count the relay's thread keeps.
    const waited = await firstReceiveAfter({ burstDeferSeconds: 2, pollIntervalMs: 100 }, 50);
    expect(waited).toBeGreaterThanOrEqual(1_950);
    // Then taken (looked at again every 200 ms), not left for the poll interval or longer.
    expect(waited).toBeLessThan(6_000);
  });

  it('scans a message at once when fewer than 100 are queued in the second', async () => {
    // 80 messages a second.
    const waited = await firstReceiveAfter({ burstDeferSeconds: 2 }, 8);
    // The nudge woke it: well before both the deferral and the poll interval (5 s).
    expect(waited).toBeLessThan(1_000);
  });

  it('counts a burst from queue.burstMessagesPerSecond: 500 a second are none when it is 2,000', async () => {
    const waited = await firstReceiveAfter({ burstDeferSeconds: 2, burstMessagesPerSecond: 2_000 }, 50);
    expect(waited).toBeLessThan(1_000);
  });

  it('counts only what the ingress queues: a flood of bounces (anyone can send them) never defers the scans', async () => {
    const waited = await firstReceiveAfter({ burstDeferSeconds: 2 }, 50, 'bounce');
    expect(waited).toBeLessThan(1_000);
  });

  /**
   * Starts the pipeline thread and nudges it as the ingress does, `perTenth` times in each tenth of
   * a second for two seconds; resolves with how many nudges the relay's thread posted to the
   * worker in the second second (the burst, if it is one, counted by then).
   */
  async function nudgesPosted(queue: { burstDeferSeconds?: number }, perTenth: number): Promise<number> {
    const { pipeline } = await startPipelineThread(queue);
    let counting = false;
    let posted = 0;
    // Every message the relay's thread posts to a worker thread goes through here.
    const original = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (this: Worker, ...args: Parameters<Worker['postMessage']>) {
      if (counting && (args[0] as { kind?: string }).kind === 'nudge') posted += 1;
      return original.apply(this, args);
    };
    try {
      const ingress = setInterval(() => {
        for (let i = 0; i < perTenth; i += 1) pipeline.nudge('scan');
      }, 100);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        counting = true;
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        counting = false;
      } finally {
        clearInterval(ingress);
      }
    } finally {
      Worker.prototype.postMessage = original;
    }
    return posted;
  }

  it('does not wake the worker during a burst: what the ingress queues is counted in shared memory', async () => {
    // 500 messages a second: the burst is counted within its first fifth of a second.
    expect(await nudgesPosted({ burstDeferSeconds: 2 }, 50)).toBe(0);
  });

  it('wakes the worker for what it queues below the burst rate, once per turn', async () => {
    // 80 messages a second, 8 a turn: about ten posts in the second (fewer when the ticks come late).
    const posted = await nudgesPosted({ burstDeferSeconds: 2 }, 8);
    expect(posted).toBeGreaterThanOrEqual(3);
    expect(posted).toBeLessThanOrEqual(11);
  });

  it('wakes the worker for every turn of a burst when queue.burstDeferSeconds is 0 (nothing defers)', async () => {
    expect(await nudgesPosted({ burstDeferSeconds: 0 }, 50)).toBeGreaterThanOrEqual(3);
  });

  it('scans at once during a burst when queue.burstDeferSeconds is 0', async () => {
    const waited = await firstReceiveAfter({ burstDeferSeconds: 0 }, 50);
    expect(waited).toBeLessThan(1_000);
  });
});
