// The SQLite queue keeps SQS semantics: delays, visibility timeouts, receive counts, redrive to
// the dead-letter queue, receipt handles that change on every receive; and the poller honours
// the handler's batchItemFailures.
import { describe, expect, it, vi } from 'vitest';
import { MAX_FAILED_REMEMBERED, Poller, SuspectGate } from '../../../adapters/local/poller.js';
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

/** A poller of queue 'q' with what every test here gives it; `options` adds to or replaces it. */
function qPoller(queue: SqliteQueue, options: Partial<ConstructorParameters<typeof Poller>[0]> & Pick<ConstructorParameters<typeof Poller>[0], 'handler'>): Poller {
  return new Poller({ queue, queueName: 'q', batchSize: 10, visibilityTimeoutSeconds: 5, pollIntervalMs: 10, logger: createLogger('test', { level: 'error' }), ...options });
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

describe('SqliteQueue: a message received before comes alone', () => {
  it('hands out a message received before in a receive of its own, never in a batch with others', async () => {
    const { queue } = setup(10);
    for (const body of ['a', 'b', 'c']) await queue.send('q', body);
    expect(await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 })).toHaveLength(3);
    // Their thread hung: all three are made visible again, and a fresh one arrives.
    expect(queue.recoverInFlight()).toBe(3);
    await queue.send('q', 'fresh');
    const batches: string[][] = [];
    for (let i = 0; i < 4; i += 1) batches.push((await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 })).map((m) => `${m.body}#${m.receiveCount}`));
    expect(batches).toEqual([['a#2'], ['b#2'], ['c#2'], ['fresh#1']]);
  });

  it('leaves a message received before for a later receive when first receives come before it', async () => {
    const { queue, advance } = setup(10);
    await queue.send('q', 'again');
    await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 });
    advance(1);
    await queue.send('q', 'f1');
    await queue.send('q', 'f2');
    advance(1);
    queue.recoverInFlight();
    expect((await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 })).map((m) => m.body)).toEqual(['f1', 'f2']);
    expect((await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 })).map((m) => `${m.body}#${m.receiveCount}`)).toEqual(['again#2']);
  });
});

describe('SuspectGate', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('does not start a lone record while a record asked to run together in the same turn runs', async () => {
    const gate = new SuspectGate();
    const log: string[] = [];
    // Asked in this order in one turn, as a poller hands over a fresh record and a repeat it received together.
    const fresh = gate.together(async () => {
      log.push('fresh start');
      await sleep(30);
      log.push('fresh end');
    });
    const repeat = gate.byItself(async () => {
      log.push('repeat start');
    });
    await Promise.all([fresh, repeat]);
    expect(log).toEqual(['fresh start', 'fresh end', 'repeat start']);
  });

  it('ends the lone record\'s wait on its timer, whatever the wall clock says (stepped back, or a timer due a millisecond "early")', async () => {
    const gate = new SuspectGate(50);
    const log: string[] = [];
    let releaseSlow = (): void => undefined;
    const slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));
    const slow = gate.together(async () => {
      await slowReleased;
      log.push('slow end');
    });
    // The wall clock stands still: by it, the 50 ms never pass.
    const frozen = vi.spyOn(Date, 'now').mockReturnValue(Date.now());
    try {
      const repeat = gate.byItself(async () => {
        log.push('repeat ran');
      });
      await Promise.race([repeat, sleep(2_000)]);
    } finally {
      frozen.mockRestore();
      releaseSlow();
      await slow;
    }
    expect(log).toEqual(['repeat ran', 'slow end']);
  });

  it('runs a lone record after its longest wait even while a slow record is still in hand, and starts nothing else meanwhile', async () => {
    const gate = new SuspectGate(50);
    const log: string[] = [];
    // Slow until the others are done (or 5 s have passed): no timer race on a busy machine, where a
    // stalled event loop let a 300 ms sleep end in the same turn as the 50 ms wait.
    let releaseSlow = (): void => undefined;
    const slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));
    const slow = gate.together(async () => {
      log.push('slow start');
      await slowReleased;
      log.push('slow end');
    });
    const repeat = gate.byItself(async () => {
      log.push('repeat start');
      await sleep(20);
      log.push('repeat end');
    });
    const later = gate.together(async () => {
      log.push('later start');
    });
    await Promise.race([Promise.all([repeat, later]), sleep(5_000)]);
    releaseSlow();
    await Promise.all([slow, repeat, later]);
    expect(log).toEqual(['slow start', 'repeat start', 'repeat end', 'later start', 'slow end']);
  });
});

describe('Poller: a record received more than once runs alone', () => {
  it('runs it once the records in hand of every poller sharing the gate are done, with nothing received or started until it is done', async () => {
    const { queue } = setup(10);
    // The repeat: received once and made visible again (its thread hung with it).
    await queue.send('a', 'repeat');
    await queue.receive('a', { max: 10, visibilityTimeoutSeconds: 300 });
    queue.recoverInFlight();
    for (let i = 0; i < 4; i += 1) await queue.send('b', `fresh-${i}`);
    const active = new Set<string>();
    const log: string[] = [];
    const gate = new SuspectGate();
    const common = { queue, batchSize: 10, visibilityTimeoutSeconds: 300, pollIntervalMs: 10, logger: createLogger('test', { level: 'error' }), gate };
    let pollerB: Poller | undefined;
    let inFlightDuringRepeat = -1;
    const handler = (ms: number) => async (event: { Records: Array<{ body: string }> }) => {
      for (const record of event.Records) {
        log.push(`start ${record.body} with [${[...active].sort().join(',')}]`);
        active.add(record.body);
      }
      if (event.Records.some((record) => record.body === 'repeat')) {
        // Sent while it runs alone: must wait until it is done.
        await queue.send('b', 'sent-meanwhile');
        pollerB?.nudge();
      }
      await new Promise((resolve) => setTimeout(resolve, ms));
      // Not even received while it runs: a hang now would leave nothing else in hand.
      if (event.Records.some((record) => record.body === 'repeat')) inFlightDuringRepeat = (await queue.depth('b')).inFlight;
      for (const record of event.Records) {
        active.delete(record.body);
        log.push(`end ${record.body}`);
      }
      return { batchItemFailures: [] };
    };
    pollerB = new Poller({ ...common, queueName: 'b', concurrency: 4, handler: handler(40) });
    const pollerA = new Poller({ ...common, queueName: 'a', handler: handler(60) });
    pollerB.start();
    await waitFor('the fresh records to start', async () => active.size === 4, { timeoutMs: 2000, intervalMs: 2 });
    pollerA.start();
    try {
      await waitFor('every record', async () => log.filter((line) => line.startsWith('end')).length === 6, { timeoutMs: 5000, intervalMs: 5 });
    } finally {
      await Promise.all([pollerA.stop(), pollerB.stop()]);
    }
    const startRepeat = log.indexOf('start repeat with []');
    const endRepeat = log.indexOf('end repeat');
    expect(startRepeat).toBeGreaterThan(-1);
    // Every fresh record ended before it started; the one sent meanwhile started after it ended.
    for (let i = 0; i < 4; i += 1) expect(log.indexOf(`end fresh-${i}`)).toBeLessThan(startRepeat);
    expect(log.findIndex((line) => line.startsWith('start sent-meanwhile'))).toBeGreaterThan(endRepeat);
    expect(inFlightDuringRepeat).toBe(0);
    expect(await queue.depth('a')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await queue.depth('b')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});

describe('Poller: a record whose handler failed is retried side by side', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  for (const how of ['reported', 'thrown'] as const) {
    it(`starts the retry of a record whose handler failed (${how}) while a slow record is in hand, without waiting for it`, async () => {
      const { queue, advance } = setup(10);
      const log: string[] = [];
      let releaseSlow = (): void => undefined;
      const slowDone = new Promise<void>((resolve) => (releaseSlow = resolve));
      const attempts = new Map<string, number>();
      const poller = qPoller(queue, {
        concurrency: 4,
        gate: new SuspectGate(5_000),
        handler: async (event) => {
          const record = event.Records[0]!;
          const attempt = (attempts.get(record.body) ?? 0) + 1;
          attempts.set(record.body, attempt);
          log.push(`start ${record.body}#${attempt}`);
          if (record.body === 'slow') await slowDone;
          log.push(`end ${record.body}#${attempt}`);
          if (record.body === 'flaky' && attempt === 1) {
            if (how === 'thrown') throw new Error('a parser that throws on this content');
            return { batchItemFailures: [{ itemIdentifier: record.messageId }] };
          }
          return { batchItemFailures: [] };
        },
      });
      await queue.send('q', 'flaky');
      poller.start();
      try {
        await waitFor('the first attempt', async () => log.includes('end flaky#1'), { timeoutMs: 2000, intervalMs: 5 });
        await queue.send('q', 'slow');
        poller.nudge();
        await waitFor('the slow record in hand', async () => log.includes('start slow#1'), { timeoutMs: 2000, intervalMs: 5 });
        // The failed record's visibility timeout passes: it is received again, with a count of 2.
        advance(5_000);
        poller.nudge();
        await waitFor('the retry', async () => log.includes('end flaky#2'), { timeoutMs: 2000, intervalMs: 5 });
        expect(log).not.toContain('end slow#1');
      } finally {
        releaseSlow();
        await poller.stop();
      }
      expect(await queue.depth('q')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    });
  }

  it('still runs alone a record received again that no handler was seen to fail (a thread died or hung with it)', async () => {
    const { queue } = setup(10);
    await queue.send('q', 'hung');
    await queue.receive('q', { max: 10, visibilityTimeoutSeconds: 300 });
    queue.recoverInFlight();
    const gate = new SuspectGate(5_000);
    // The slow record in hand when the repeat is received.
    let releaseSlow = (): void => undefined;
    const slow = gate.together(() => new Promise<void>((resolve) => (releaseSlow = resolve)));
    const log: string[] = [];
    const poller = qPoller(queue, {
      visibilityTimeoutSeconds: 300,
      gate,
      handler: async (event) => {
        log.push(`start ${event.Records[0]?.body}`);
        return { batchItemFailures: [] };
      },
    });
    poller.start();
    try {
      await sleep(300);
      expect(log).toEqual([]);
      releaseSlow();
      await slow;
      await waitFor('the repeat, alone', async () => log.length === 1, { timeoutMs: 2000, intervalMs: 5 });
    } finally {
      releaseSlow();
      await poller.stop();
    }
  });

  it('remembers a bounded number of clean failures, forgetting the oldest first', () => {
    const gate = new SuspectGate();
    for (let i = 0; i <= MAX_FAILED_REMEMBERED; i += 1) gate.failed(`m${i}`);
    // m0 was forgotten: its retry is a suspect again; the newest is not, once.
    expect(gate.suspect('m0')).toBe(true);
    expect(gate.suspect(`m${MAX_FAILED_REMEMBERED}`)).toBe(false);
    expect(gate.suspect(`m${MAX_FAILED_REMEMBERED}`)).toBe(true);
    expect(gate.suspect('m1')).toBe(false);
  });
});

describe('Poller', () => {
  it('hands SQS-shaped batches to the handler and deletes only what it did not report as failed', async () => {
    const { queue, advance } = setup();
    for (const body of ['ok-1', 'fail', 'ok-2']) await queue.send('q', body);
    const seen: string[] = [];
    const poller = qPoller(queue, {
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
    const poller = qPoller(queue, {
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
    const poller = qPoller(queue, {
      visibilityTimeoutSeconds: 60,
      concurrency: 2,
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
