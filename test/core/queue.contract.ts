// The contract every Queue backend keeps (SQLite, SQS): SQS semantics — delays, visibility
// timeouts, receive counts, receipt handles that change on every receive, redrive to `<name>-dlq`
// after maxReceives receives, and depth. Call `queueContract(name, open)` from a backend's test
// file; `advance` moves that backend's time on (a manual clock, or real waiting for SQS).
import { afterEach, describe, expect, it } from 'vitest';
import type { Queue } from '../../core/ports.js';

export interface QueueFixture {
  queue: Queue;
  /** A queue of this fixture's own, created with its dead-letter queue `<name>-dlq`. */
  name: string;
  advance(ms: number): Promise<void>;
  close(): Promise<void> | void;
}

export interface QueueQuirks {
  /**
   * local-aws-sqs deletes a message with any receipt handle it ever issued for it; SQS keeps the
   * message when the handle is not the latest one ("the request succeeds, but the message will
   * not be deleted", DeleteMessage in the SQS API reference), as the SQLite queue does.
   */
  staleReceiptHandleDeletes?: boolean;
}

export function queueContract(backend: string, open: (options: { maxReceives: number }) => Promise<QueueFixture>, quirks: QueueQuirks = {}): void {
  describe(`Queue contract: ${backend}`, () => {
    let fixture: QueueFixture | undefined;
    const setup = async (maxReceives = 3): Promise<QueueFixture> => (fixture = await open({ maxReceives }));
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });

    it('hands out what was sent, body intact, each message once while it is in flight', async () => {
      const { queue, name } = await setup();
      const bodies = ['{"a":1}', 'ünïcødé ✉', 'x'.repeat(10_000)];
      const ids = [];
      for (const body of bodies) ids.push(await queue.send(name, body));
      expect(new Set(ids).size).toBe(3);
      const received = await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 30 });
      expect(received.map((message) => message.body).sort()).toEqual([...bodies].sort());
      expect(received.map((message) => message.messageId).sort()).toEqual([...ids].sort());
      for (const message of received) {
        expect(message.receiveCount).toBe(1);
        expect(message.firstReceivedAt).toBeGreaterThanOrEqual(message.sentAt);
      }
      expect(await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 30 })).toEqual([]);
    });

    it('receives at most `max` messages at once', async () => {
      const { queue, name } = await setup();
      for (let i = 0; i < 4; i++) await queue.send(name, `m${i}`);
      expect((await queue.receive(name, { max: 2, visibilityTimeoutSeconds: 30 })).length).toBeLessThanOrEqual(2);
    });

    it('hides a delayed message until its delay has passed', async () => {
      const { queue, name, advance } = await setup();
      await queue.send(name, 'later', { delaySeconds: 1 });
      expect(await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 30 })).toEqual([]);
      expect(await queue.depth(name)).toEqual({ visible: 0, inFlight: 0, delayed: 1 });
      await advance(1000);
      const [message] = await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 30 });
      expect(message?.body).toBe('later');
    });

    it('hides a received message for the visibility timeout, then hands it out again with a new receipt; a stale receipt deletes nothing', async () => {
      const { queue, name, advance } = await setup();
      await queue.send(name, 'body');
      const [first] = await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 1 });
      expect(first?.receiveCount).toBe(1);
      expect(await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 1 })).toEqual([]);
      expect(await queue.depth(name)).toMatchObject({ inFlight: 1 });
      await advance(1000);
      const [second] = await queue.receive(name, { max: 10, visibilityTimeoutSeconds: 30 });
      expect(second?.receiveCount).toBe(2);
      expect(second?.body).toBe('body');
      expect(second?.receiptHandle).not.toBe(first?.receiptHandle);
      if (!quirks.staleReceiptHandleDeletes) {
        await queue.delete(name, first?.receiptHandle ?? '');
        expect(await queue.depth(name)).toMatchObject({ inFlight: 1 });
      }
      await queue.delete(name, second?.receiptHandle ?? '');
      expect(await queue.depth(name)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    });

    it('moves a message to the dead-letter queue after maxReceives receives', async () => {
      const { queue, name, advance } = await setup(2);
      await queue.send(name, 'poison');
      for (let i = 0; i < 2; i++) {
        expect(await queue.receive(name, { max: 1, visibilityTimeoutSeconds: 1 })).toHaveLength(1);
        await advance(1000);
      }
      expect(await queue.receive(name, { max: 1, visibilityTimeoutSeconds: 1 })).toEqual([]);
      const [dead] = await queue.receive(`${name}-dlq`, { max: 1, visibilityTimeoutSeconds: 1 });
      expect(dead?.body).toBe('poison');
    });

    it('makes a received message visible again at once with a visibility of 0', async () => {
      const { queue, name, advance } = await setup();
      await queue.send(name, 'body');
      const [message] = await queue.receive(name, { max: 1, visibilityTimeoutSeconds: 300 });
      await queue.changeVisibility(name, message?.receiptHandle ?? '', 0);
      await advance(1);
      const [again] = await queue.receive(name, { max: 1, visibilityTimeoutSeconds: 300 });
      expect(again?.body).toBe('body');
    });
  });
}
