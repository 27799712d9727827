// The SQLite queue keeps SQS semantics: delays, visibility timeouts, receive counts, redrive to
// the dead-letter queue, receipt handles that change on every receive; and the poller honours
// the handler's batchItemFailures.
import { describe, expect, it } from 'vitest';
import { Poller } from '../../../adapters/local/poller.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { createLogger } from '../../../core/log.js';
import { waitFor } from '../../helpers/net.js';

function setup(maxReceives = 3) {
  let now = 1_000_000;
  const clock = { now: () => now };
  const queue = new SqliteQueue(openDatabase(':memory:'), { maxReceives, clock });
  return { queue, advance: (ms: number) => (now += ms) };
}

describe('SqliteQueue', () => {
  it('hides a delayed message until its delay has passed', async () => {
    const { queue, advance } = setup();
    await queue.send('q', 'later', { delaySeconds: 60 });
    expect(await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 30 })).toEqual([]);
    expect(await queue.depth('q')).toEqual({ visible: 0, inFlight: 0, delayed: 1 });
    advance(60_000);
    const [message] = await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 30 });
    expect(message?.body).toBe('later');
  });

  it('hides a received message for the visibility timeout, then hands it out again with a new receipt', async () => {
    const { queue, advance } = setup();
    await queue.send('q', 'body');
    const [first] = await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 30 });
    expect(first?.receiveCount).toBe(1);
    expect(await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 30 })).toEqual([]);
    expect(await queue.depth('q')).toMatchObject({ inFlight: 1 });
    advance(30_000);
    const [second] = await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 30 });
    expect(second?.receiveCount).toBe(2);
    expect(second?.receiptHandle).not.toBe(first?.receiptHandle);
    // A stale receipt handle deletes nothing.
    await queue.delete('q', first?.receiptHandle ?? '');
    expect(await queue.depth('q')).toMatchObject({ inFlight: 1 });
    await queue.delete('q', second?.receiptHandle ?? '');
    expect(await queue.depth('q')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('moves a message to the dead-letter queue after maxReceives receives', async () => {
    const { queue, advance } = setup(2);
    await queue.send('q', 'poison');
    for (let i = 0; i < 2; i++) {
      expect(await queue.receive('q', { max: 1, visibilityTimeoutSeconds: 1 })).toHaveLength(1);
      advance(1000);
    }
    expect(await queue.receive('q', { max: 1, visibilityTimeoutSeconds: 1 })).toEqual([]);
    const [dead] = await queue.receive('q-dlq', { max: 1, visibilityTimeoutSeconds: 1 });
    expect(dead?.body).toBe('poison');
  });

  it('tells its dead-letter listeners which message moved (queue, receive count, Outpost message id), never the body', async () => {
    const { queue, advance } = setup(1);
    const alerts: unknown[] = [];
    queue.onDeadLetter((deadLetter) => alerts.push(deadLetter));
    const id = await queue.send('deliver', JSON.stringify({ envelope: { messageId: 'MSG-DEAD', secret: 'body text' }, attempt: 1 }));
    await queue.receive('deliver', { max: 1, visibilityTimeoutSeconds: 1 });
    advance(1000);
    expect(alerts).toEqual([]);
    expect(await queue.receive('deliver', { max: 1, visibilityTimeoutSeconds: 1 })).toEqual([]);
    expect(alerts).toEqual([{ queue: 'deliver', queueMessageId: id, receiveCount: 1, messageId: 'MSG-DEAD' }]);
    expect(await queue.depth('deliver-dlq')).toMatchObject({ visible: 1 });
  });

  it('redrives a dead-letter queue: its messages are received again from the start (receive count 1)', async () => {
    const { queue, advance } = setup(1);
    await queue.send('scan', 'first');
    await queue.send('scan', 'second');
    await queue.receive('scan', { max: 2, visibilityTimeoutSeconds: 1 });
    advance(1000);
    await queue.receive('scan', { max: 2, visibilityTimeoutSeconds: 1 });
    expect(await queue.depth('scan-dlq')).toMatchObject({ visible: 2 });
    expect(await queue.redrive('deliver')).toBe(0);
    expect(await queue.redrive('scan')).toBe(2);
    expect(await queue.depth('scan-dlq')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    const again = await queue.receive('scan', { max: 2, visibilityTimeoutSeconds: 1 });
    expect(again.map((message) => [message.body, message.receiveCount])).toEqual([['first', 1], ['second', 1]]);
  });

  it('changes visibility of a received message', async () => {
    const { queue, advance } = setup();
    await queue.send('q', 'body');
    const [message] = await queue.receive('q', { max: 1, visibilityTimeoutSeconds: 300 });
    await queue.changeVisibility('q', message?.receiptHandle ?? '', 0);
    advance(1);
    expect(await queue.receive('q', { max: 1, visibilityTimeoutSeconds: 300 })).toHaveLength(1);
  });

  it('makes in-flight messages visible again at start-up (recoverInFlight), keeping their receive count', async () => {
    const { queue } = setup();
    await queue.send('q', 'was in flight');
    await queue.send('q', 'delayed', { delaySeconds: 600 });
    await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 });
    expect(queue.recoverInFlight()).toBe(1);
    const [message] = await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 });
    expect(message).toMatchObject({ body: 'was in flight', receiveCount: 2 });
    expect(await queue.depth('q')).toMatchObject({ delayed: 1 });
  });
});

describe('Poller', () => {
  it('hands SQS-shaped batches to the handler and deletes only what it did not report as failed', async () => {
    const { queue, advance } = setup();
    for (const body of ['ok-1', 'fail', 'ok-2']) await queue.send('q', body);
    const seen: string[] = [];
    const poller = new Poller({
      queue,
      queueName: 'q',
      batchSize: 10,
      visibilityTimeoutSeconds: 5,
      pollIntervalMs: 10,
      logger: createLogger('test', { level: 'error' }),
      handler: async (event) => {
        for (const record of event.Records) {
          expect(record.eventSource).toBe('aws:sqs');
          seen.push(`${record.body}#${record.attributes.ApproximateReceiveCount}`);
        }
        return { batchItemFailures: event.Records.filter((r) => r.body === 'fail').map((r) => ({ itemIdentifier: r.messageId })) };
      },
    });
    expect(await poller.pollOnce()).toBe(3);
    advance(5000);
    expect(await poller.pollOnce()).toBe(1);
    expect(seen.sort()).toEqual(['fail#1', 'fail#2', 'ok-1#1', 'ok-2#1']);
  });

  it('retries the whole batch when the handler throws', async () => {
    const { queue, advance } = setup();
    await queue.send('q', 'a');
    let calls = 0;
    const poller = new Poller({
      queue,
      queueName: 'q',
      batchSize: 10,
      visibilityTimeoutSeconds: 5,
      pollIntervalMs: 10,
      logger: createLogger('test', { level: 'error' }),
      handler: async () => {
        calls += 1;
        if (calls === 1) throw new Error('boom');
        return { batchItemFailures: [] };
      },
    });
    await poller.pollOnce();
    advance(5000);
    await poller.pollOnce();
    expect(calls).toBe(2);
    expect(await queue.depth('q')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});

describe('Poller with concurrency', () => {
  it('hands records over one by one as slots free: a slow record holds back neither its batch nor later records', async () => {
    const { queue } = setup();
    await queue.send('q', 'slow');
    await queue.send('q', 'fast-1');
    let releaseSlow = (): void => undefined;
    const slowDone = new Promise<void>((resolve) => (releaseSlow = resolve));
    const handled: string[] = [];
    const poller = new Poller({
      queue,
      queueName: 'q',
      batchSize: 10,
      visibilityTimeoutSeconds: 60,
      pollIntervalMs: 10,
      concurrency: 2,
      logger: createLogger('test', { level: 'error' }),
      handler: async (event) => {
        expect(event.Records).toHaveLength(1);
        const body = event.Records[0]?.body ?? '';
        if (body === 'slow') await slowDone;
        handled.push(body);
        return { batchItemFailures: [] };
      },
    });
    poller.start();
    try {
      await waitFor('the fast record', async () => handled.includes('fast-1'), { timeoutMs: 2000, intervalMs: 5 });
      // Its slot is free again while the slow one is still held: the next record is taken at once.
      await queue.send('q', 'fast-2');
      poller.nudge();
      await waitFor('the record sent later', async () => handled.includes('fast-2'), { timeoutMs: 2000, intervalMs: 5 });
      expect(handled).toEqual(['fast-1', 'fast-2']);
      expect(await queue.depth('q')).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
    } finally {
      releaseSlow();
      await poller.stop();
    }
    expect(handled).toEqual(['fast-1', 'fast-2', 'slow']);
    expect(await queue.depth('q')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});
