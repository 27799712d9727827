// The single node's pipeline thread gives way to an ingress burst (queue.burstDeferSeconds): the
// relay nudges it once per turn with the number of messages it queued, and while those come to
// queue.burstMessagesPerSecond (100) or more within a second, the scan poller in the worker thread
// leaves the new messages in the queue until they have waited the deferral. A trickle is scanned
// at once, and 0 turns it off.
// Real worker thread, real database; when the scan poller first receives the message is read
// from the queue's own record (first_received_at).
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
   * Starts the pipeline thread, queues one message on 'scan', and goes on nudging as the ingress
   * does, once per message queued, `perTenth` times in each tenth of a second (a turn each; on a
   * busy machine the ticks come later, so the rate only falls); resolves with how long until the
   * scan poller received the message.
   */
  async function firstReceiveAfter(queue: { burstDeferSeconds?: number; burstMessagesPerSecond?: number }, perTenth: number, nudged = 'scan'): Promise<number> {
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
    const db = new Database(join(dir, 'outpost.db'), { readonly: true });
    try {
      // The worker thread loads its modules first (seconds on a busy machine): a nudge sent before
      // it runs is seen only after its first receive.
      await waitFor('the pipeline thread to start', async () => started, { timeoutMs: 30_000, intervalMs: 20 });
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
    // 500 messages a second: a burst even if the ticks come at a quarter of their pace.
    const waited = await firstReceiveAfter({ burstDeferSeconds: 2 }, 50);
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

  it('scans at once during a burst when queue.burstDeferSeconds is 0', async () => {
    const waited = await firstReceiveAfter({ burstDeferSeconds: 0 }, 50);
    expect(waited).toBeLessThan(1_000);
  });
});
