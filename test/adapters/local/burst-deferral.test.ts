// The ingress first during a burst (queue.burstDeferSeconds): while the ingress queues at least
// 100 messages a second, the single node's scan poller leaves messages younger than the deferral
// in the queue, and takes them once they are that old or once the burst is over; nudges do not
// make it receive meanwhile. Below the rate, or with the setting at 0, a message is taken at once.
import { afterEach, describe, expect, it } from 'vitest';
import { BurstDeferral } from '../../../adapters/local/burst-deferral.js';
import { Poller } from '../../../adapters/local/poller.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { createLogger } from '../../../core/log.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import { waitFor } from '../../helpers/net.js';

describe('BurstDeferral', () => {
  function tracker(deferMs = 10_000) {
    let now = 50_000;
    // queue.burstMessagesPerSecond's default.
    const burst = new BurstDeferral(deferMs, 100, () => now);
    return { burst, advance: (ms: number) => (now += ms) };
  }

  it('defers from the hundredth message queued within a second, and not below that', () => {
    const { burst, advance } = tracker();
    burst.queued(60);
    advance(500);
    burst.queued(39);
    expect(burst.minAgeMs()).toBe(0);
    burst.queued(1);
    expect(burst.minAgeMs()).toBe(10_000);
  });

  it('stops deferring once the last second holds fewer than a hundred', () => {
    const { burst, advance } = tracker();
    burst.queued(80);
    advance(600);
    burst.queued(30);
    expect(burst.minAgeMs()).toBe(10_000);
    // The 80 are more than a second old now; the 30 alone are no burst.
    advance(500);
    expect(burst.minAgeMs()).toBe(0);
    // A long silence empties every bucket, however long it was.
    burst.queued(99);
    advance(3_600_000);
    burst.queued(1);
    expect(burst.minAgeMs()).toBe(0);
  });

  it('a message rate spread evenly over the second counts as a burst', () => {
    const { burst, advance } = tracker();
    for (let i = 0; i < 20; i += 1) {
      burst.queued(6);
      advance(50);
    }
    // 120 messages over the last second.
    expect(burst.minAgeMs()).toBe(10_000);
  });

  it('counts in memory another reader shares: what one counts the other reads, and reading changes nothing', () => {
    let now = 50_000;
    const memory = BurstDeferral.sharedMemory();
    const relay = new BurstDeferral(10_000, 100, () => now, memory);
    const worker = new BurstDeferral(10_000, 100, () => now, memory);
    relay.queued(99);
    expect(worker.minAgeMs()).toBe(0);
    expect(worker.minAgeMs()).toBe(0);
    relay.queued(1);
    expect(worker.minAgeMs()).toBe(10_000);
    // A second later the worker sees the burst over, without anyone counting meanwhile.
    now += 1_000;
    expect(worker.minAgeMs()).toBe(0);
    // A reader made later (a restarted worker) reads the same count, and does not clear it.
    relay.queued(100);
    expect(new BurstDeferral(10_000, 100, () => now, memory).minAgeMs()).toBe(10_000);
    expect(worker.minAgeMs()).toBe(10_000);
  });

  it('keeps a second right where the 100 ms slot number wraps at 32 bits', () => {
    // Slot 2^31 - 3 to 2^31 + 6: the stored numbers go from the largest int32 to negative ones.
    let now = (2 ** 31 - 3) * 100;
    const burst = new BurstDeferral(10_000, 100, () => now);
    for (let i = 0; i < 10; i += 1) {
      burst.queued(10);
      now += 100;
    }
    now -= 100;
    expect(burst.minAgeMs()).toBe(10_000);
    now += 100;
    // The first ten are more than a second old now.
    expect(burst.minAgeMs()).toBe(0);
  });

  it('never defers when the setting is 0', () => {
    const { burst } = tracker(0);
    burst.queued(10_000);
    expect(burst.minAgeMs()).toBe(0);
  });
});

describe('SqliteQueue.receive with minAgeMs', () => {
  it('leaves messages visible for less than minAgeMs, and hands them out once they are that old', async () => {
    let now = 1_000_000;
    const queue = new SqliteQueue(openDatabase(':memory:'), { maxReceives: 3, clock: { now: () => now } });
    await queue.send('scan', 'older');
    now += 4_000;
    await queue.send('scan', 'newer');
    now += 1_000;
    const received = async (minAgeMs?: number) => (await queue.receive('scan', { max: 10, visibilityTimeoutSeconds: 60, ...(minAgeMs !== undefined ? { minAgeMs } : {}) })).map((message) => message.body);
    expect(await received(6_000)).toEqual([]);
    expect(await received(5_000)).toEqual(['older']);
    expect(await received(5_000)).toEqual([]);
    expect(await received()).toEqual(['newer']);
  });
});

describe('Poller with minAgeMs', () => {
  const pollers: Poller[] = [];
  afterEach(async () => {
    await Promise.all(pollers.splice(0).map((poller) => poller.stop()));
  });

  /** A deferring poller of 'scan'; its first `failingReceives` receives fail as on a full disk. */
  function start(minAgeMs: () => number, failingReceives = 0) {
    const queue = new SqliteQueue(openDatabase(':memory:'), { maxReceives: 3 });
    const handled: Array<{ body: string; at: number }> = [];
    let receives = 0;
    const counted = {
      ...queue,
      receive: (...args: Parameters<SqliteQueue['receive']>) => {
        receives += 1;
        if (receives <= failingReceives) return Promise.reject(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
        return queue.receive(...args);
      },
      delete: (...args: Parameters<SqliteQueue['delete']>) => queue.delete(...args),
    } as unknown as SqliteQueue;
    const poller = new Poller({
      queue: counted,
      queueName: 'scan',
      batchSize: 10,
      visibilityTimeoutSeconds: 60,
      pollIntervalMs: 5_000,
      logger: createLogger('test', { level: 'error' }),
      minAgeMs,
      handler: async (event: SqsEvent) => {
        for (const record of event.Records) handled.push({ body: record.body, at: Date.now() });
        return { batchItemFailures: [] };
      },
    });
    pollers.push(poller);
    poller.start();
    return { queue, poller, handled, receives: () => receives };
  }

  it('takes a message only once it has waited minAgeMs, and nudges do not make it receive meanwhile', async () => {
    const { queue, poller, handled, receives } = start(() => 600);
    // The first receive (an empty queue) has set the poller deferring.
    await waitFor('the first receive', async () => receives() >= 1, { timeoutMs: 2000, intervalMs: 5 });
    const sentAt = Date.now();
    await queue.send('scan', 'm1');
    const before = receives();
    const nudgingFrom = Date.now();
    for (let i = 0; i < 50; i += 1) {
      poller.nudge();
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    // 50 nudges over 100 ms or more (longer on a busy machine): one receive each DEFER_POLL_MS (200 ms) at most, not one a nudge.
    expect(receives() - before).toBeLessThanOrEqual(Math.ceil((Date.now() - nudgingFrom) / 200) + 1);
    expect(handled).toEqual([]);
    await waitFor('the message, once old enough', async () => handled.length === 1, { timeoutMs: 3000, intervalMs: 10 });
    expect(handled[0]?.at).toBeGreaterThanOrEqual(sentAt + 600);
    // Looked again every 200 ms, not every poll interval (5 s): taken soon after it came of age.
    expect(handled[0]?.at).toBeLessThan(sentAt + 600 + 3_000);
  });

  it('takes a message at once when not deferring: the nudge wakes it', async () => {
    const { queue, poller, handled, receives } = start(() => 0);
    await waitFor('the first receive', async () => receives() >= 1, { timeoutMs: 2000, intervalMs: 5 });
    const sentAt = Date.now();
    await queue.send('scan', 'm1');
    poller.nudge();
    await waitFor('the message', async () => handled.length === 1, { timeoutMs: 2000, intervalMs: 5 });
    // Far sooner than the poll interval of 5 s: the nudge woke it.
    expect(handled[0]!.at - sentAt).toBeLessThan(2_500);
  });

  it('takes the young messages as soon as the burst is over', async () => {
    let deferring = true;
    const { queue, handled, receives } = start(() => (deferring ? 60_000 : 0));
    await waitFor('the first receive', async () => receives() >= 1, { timeoutMs: 2000, intervalMs: 5 });
    await queue.send('scan', 'm1');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(handled).toEqual([]);
    const endedAt = Date.now();
    deferring = false;
    // No nudge: the deferring poller looks again within DEFER_POLL_MS.
    await waitFor('the message after the burst', async () => handled.length === 1, { timeoutMs: 2000, intervalMs: 5 });
    // Within DEFER_POLL_MS, not the poll interval of 5 s.
    expect(handled[0]!.at - endedAt).toBeLessThan(2_500);
  });

  it('loses nothing when it stops while deferring: the young message stays queued, visible, for the next start', async () => {
    const { queue, poller, handled, receives } = start(() => 60_000);
    await waitFor('the first receive', async () => receives() >= 1, { timeoutMs: 2000, intervalMs: 5 });
    await queue.send('scan', 'm1');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await poller.stop();
    expect(handled).toEqual([]);
    expect(await queue.depth('scan')).toEqual({ visible: 1, inFlight: 0, delayed: 0 });
    const [message] = await queue.receive('scan', { max: 10, visibilityTimeoutSeconds: 60 });
    expect(message?.body).toBe('m1');
    expect(message?.receiveCount).toBe(1);
  });

  it('goes on deferring and then takes the message when receives fail for a while (a full disk)', async () => {
    const { queue, handled, receives } = start(() => 400, 3);
    await queue.send('scan', 'm1');
    await waitFor('the message, after the failed receives', async () => handled.length === 1, { timeoutMs: 5000, intervalMs: 10 });
    expect(receives()).toBeGreaterThan(3);
    expect(handled[0]?.body).toBe('m1');
    // The poller deletes the message after its handler came back: wait for that, not only the handler.
    const empty = { visible: 0, inFlight: 0, delayed: 0 };
    await waitFor('the message deleted after its handling', async () => JSON.stringify(await queue.depth('scan')) === JSON.stringify(empty), { timeoutMs: 2000, intervalMs: 10 });
    expect(await queue.depth('scan')).toEqual(empty);
  });
});
