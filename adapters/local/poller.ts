// The single node's stand-in for the Lambda SQS event source: receives batches from the SQLite
// queue, hands them to the same handler the Lambda runs, and deletes what the handler did not
// report in `batchItemFailures` (those become visible again after the visibility timeout).
// With `concurrency`, records are handed over one by one as slots free up, so a slow record
// never holds back the others of its batch (no waiting for the whole batch).
//
// A record received more than once was not finished the time before: its handler failed, it ran
// past its visibility timeout, or the thread handling it died or hung (retries of a delivery are
// new queue messages, received once). One whose handler this thread saw fail (a failure it
// reported, or an exception) is retried side by side with the others: its handler came back, it
// cannot hang the thread. Any other (it ran past its visibility timeout, or a thread died or hung
// with it: a new thread knows of no clean failure) is handled alone (SuspectGate): once the
// records in hand of every poller sharing the gate have finished (or ALONE_WAIT_MS has passed),
// with nothing received meanwhile. So a message that hangs the thread each time is in practice
// the only one in hand when it does, and only its own receive count keeps growing until it
// reaches the dead-letter queue; the messages it was received together with the first time are
// received once more and then handled alone like it, without it. And a message whose handler
// merely fails (a parser that throws on a tenant's content) never pauses the pipeline.
import type { Logger, Queue, ReceivedMessage } from '../../core/ports.js';
import type { SqsEvent, SqsHandler } from '../../core/sqs-event.js';
import { errorMessage } from '../../core/log.js';
import type { LocalReceiveOptions } from './queue.js';

export interface PollerOptions {
  queue: Queue;
  queueName: string;
  handler: SqsHandler;
  batchSize: number;
  visibilityTimeoutSeconds: number;
  pollIntervalMs: number;
  logger: Logger;
  /**
   * Records handled at once, each as its own one-record event, receiving more as soon as one
   * finishes. Unset: one batch at a time, as Lambda's event source hands them.
   */
  concurrency?: number;
  /** Shared by the pollers of one thread, so that a record received more than once runs alone among all of them; one of its own by default. */
  gate?: SuspectGate;
  /**
   * How long a message must have been waiting before this poller takes it, asked before each
   * receive (BurstDeferral.minAgeMs; 0: at once). Nudges do not wake a poller that defers: each
   * would cost a receive, i.e. the database's write lock, in the middle of the burst. Only with the
   * single node's SqliteQueue, which takes `minAgeMs`.
   */
  minAgeMs?: () => number;
}

/** How often a deferring poller looks again (the oldest message may have come of age, or the burst ended). */
export const DEFER_POLL_MS = 200;

/** How long a record received more than once waits for the records in hand to finish before it runs anyway. */
export const ALONE_WAIT_MS = 10_000;
/** Clean failures remembered at most (the oldest is forgotten first: its retry then runs alone). */
export const MAX_FAILED_REMEMBERED = 10_000;

/**
 * Lets records run side by side, except a suspect (received more than once, and not seen to fail
 * cleanly: `suspect`), which runs alone: from the
 * moment it asks, no poller receives and no record starts until it is done, and it starts once
 * the records in hand have finished, or after `maxWaitMs` if they have not (a delivery to a
 * slow server may take minutes: the pipeline does not stand still that long for it; such a record,
 * if the lone one hangs the thread, is received again, and then runs alone in its turn).
 */
export class SuspectGate {
  /**
   * Queue message ids whose handler this thread saw fail cleanly (reported or thrown), until they
   * are received again: their retry runs side by side. Lost with the thread, as it should be.
   */
  private readonly failedCleanly = new Set<string>();
  private running = 0;
  private alone = false;
  private waitingAlone = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly maxWaitMs = ALONE_WAIT_MS) {}

  /** The handler of `queueMessageId` came back with a failure: its next receive is no suspect. */
  failed(queueMessageId: string): void {
    this.failedCleanly.add(queueMessageId);
    // Bounded: a message that is never received again (deleted by hand, moved) must not stay forever.
    if (this.failedCleanly.size > MAX_FAILED_REMEMBERED) {
      const oldest = this.failedCleanly.values().next().value;
      if (oldest !== undefined) this.failedCleanly.delete(oldest);
    }
  }

  /** Whether a record received again must run alone: yes, unless its handler was seen to fail cleanly (then forgotten). */
  suspect(queueMessageId: string): boolean {
    return !this.failedCleanly.delete(queueMessageId);
  }

  /** Whether a record may be received or started now. */
  get open(): boolean {
    return !this.alone && this.waitingAlone === 0;
  }

  /** Resolves once no record waits to run alone or runs alone. */
  async whenOpen(): Promise<void> {
    while (!this.open) await this.changed();
  }

  /** Runs `fn` side by side with the other records, once the gate is open. */
  async together<T>(fn: () => Promise<T>): Promise<T> {
    // Checked and counted in the same turn (no await between): a record asking to run alone
    // meanwhile sees this one running.
    while (!this.open) await this.changed();
    this.running += 1;
    try {
      return await fn();
    } finally {
      this.running -= 1;
      this.notify();
    }
  }

  /** Runs `fn` once nothing else runs (or `maxWaitMs` has passed), with nothing else started until it is done. */
  async byItself<T>(fn: () => Promise<T>): Promise<T> {
    this.waitingAlone += 1;
    // The timer itself ends the wait: compared with Date.now(), a timer may fire a millisecond
    // "early" (timers run on the monotonic clock), and the wait then went on until the records in
    // hand finished, however long that took.
    let waitedEnough = false;
    const timer = setTimeout(() => {
      waitedEnough = true;
      this.notify();
    }, this.maxWaitMs);
    try {
      while (this.alone || (this.running > 0 && !waitedEnough)) await this.changed();
    } finally {
      clearTimeout(timer);
      this.waitingAlone -= 1;
    }
    this.alone = true;
    try {
      return await fn();
    } finally {
      this.alone = false;
      this.notify();
    }
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** A record being handled, as the pipeline thread's watchdog reports what a hung thread was doing. */
export interface RecordInHand {
  queue: string;
  queueMessageId: string;
  receiveCount: number;
  /** Date.now() when its handling began. */
  since: number;
}

export class Poller {
  /** The records being handled now, by queue message id. */
  private readonly handling = new Map<string, RecordInHand>();

  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly gate: SuspectGate;
  /** The last receive left young messages in the queue (minAgeMs): nudges do not wake it. */
  private deferring = false;

  constructor(private readonly options: PollerOptions) {
    this.gate = options.gate ?? new SuspectGate();
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Lets a producer skip the poll interval when it has just queued something. */
  nudge(): void {
    if (!this.deferring) this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  /** Receives and handles one batch; returns how many records it handled. */
  async pollOnce(): Promise<number> {
    // Nothing is received while a record runs alone: it would be in hand if that record hangs.
    await this.gate.whenOpen();
    const messages = await this.receive(this.options.batchSize);
    if (messages.length === 0) return 0;
    await this.handle(messages);
    return messages.length;
  }

  /** Up to `max` messages, of those old enough when the poller defers (minAgeMs). */
  private async receive(max: number): Promise<ReceivedMessage[]> {
    const { queue, queueName, visibilityTimeoutSeconds } = this.options;
    const minAgeMs = this.options.minAgeMs?.() ?? 0;
    this.deferring = minAgeMs > 0;
    const options: LocalReceiveOptions = { max, visibilityTimeoutSeconds, ...(minAgeMs > 0 ? { minAgeMs } : {}) };
    return queue.receive(queueName, options);
  }

  /** The records being handled now. */
  inHand(): RecordInHand[] {
    return [...this.handling.values()];
  }

  /**
   * Hands `messages` to the handler as one event and deletes those it did not report failed; a
   * message received more than once that is a suspect (see the top of this file) goes to the
   * handler alone, in an event of its own, after the others.
   */
  private async handle(messages: ReceivedMessage[]): Promise<void> {
    const suspects = messages.filter((message) => message.receiveCount > 1 && this.gate.suspect(message.messageId));
    const together = messages.filter((message) => !suspects.includes(message));
    if (together.length > 0) await this.gate.together(() => this.handleInHand(together));
    for (const message of suspects) await this.gate.byItself(() => this.handleInHand([message]));
  }

  private async handleInHand(messages: ReceivedMessage[]): Promise<void> {
    const since = Date.now();
    for (const message of messages) this.handling.set(message.messageId, { queue: this.options.queueName, queueMessageId: message.messageId, receiveCount: message.receiveCount, since });
    try {
      await this.handleEvent(messages);
    } finally {
      for (const message of messages) this.handling.delete(message.messageId);
    }
  }

  private async handleEvent(messages: ReceivedMessage[]): Promise<void> {
    const { queue, queueName, handler } = this.options;
    const event: SqsEvent = {
      Records: messages.map((message) => ({
        messageId: message.messageId,
        receiptHandle: message.receiptHandle,
        body: message.body,
        attributes: {
          ApproximateReceiveCount: String(message.receiveCount),
          SentTimestamp: String(message.sentAt),
          ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt),
        },
        eventSource: 'aws:sqs',
        eventSourceARN: `arn:outpost:sqs:local:${queueName}`,
      })),
    };
    let failed = new Set<string>();
    try {
      const response = await handler(event);
      failed = new Set(response.batchItemFailures.map((item) => item.itemIdentifier));
    } catch (error: unknown) {
      // A handler that throws fails the whole batch, as with Lambda.
      this.options.logger.error('handler failed the whole batch', { queue: queueName, error: errorMessage(error) });
      for (const message of messages) this.gate.failed(message.messageId);
      return;
    }
    for (const message of messages) {
      if (failed.has(message.messageId)) this.gate.failed(message.messageId);
      else await queue.delete(queueName, message.receiptHandle);
    }
  }

  private readonly inFlight = new Set<Promise<void>>();

  /** Concurrency mode: keeps up to `concurrency` records in hand, receiving as slots free. */
  private async concurrentLoop(concurrency: number): Promise<void> {
    const { queueName, batchSize } = this.options;
    while (!this.stopped) {
      // Nothing is received while a record runs alone: it would be in hand if that record hangs.
      await this.gate.whenOpen();
      const free = concurrency - this.inFlight.size;
      let received: ReceivedMessage[] = [];
      if (free > 0 && !this.stopped) {
        try {
          received = await this.receive(Math.min(batchSize, free));
        } catch (error: unknown) {
          this.options.logger.error('poll failed', { queue: queueName, error: errorMessage(error) });
        }
      }
      for (const message of received) {
        const running: Promise<void> = this.handle([message])
          .catch((error: unknown) => this.options.logger.error('record handling failed', { queue: queueName, error: errorMessage(error) }))
          .finally(() => {
            this.inFlight.delete(running);
            this.wake?.();
          });
        this.inFlight.add(running);
      }
      // Full: wait for a slot. Empty queue: wait for the interval, a nudge or a finished record.
      if ((free <= 0 || received.length === 0) && !this.stopped) await this.pause();
    }
    await Promise.all([...this.inFlight]);
  }

  private async pause(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.deferring ? Math.min(DEFER_POLL_MS, this.options.pollIntervalMs) : this.options.pollIntervalMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  private async loop(): Promise<void> {
    if (this.options.concurrency !== undefined) return this.concurrentLoop(this.options.concurrency);
    while (!this.stopped) {
      let handled = 0;
      try {
        handled = await this.pollOnce();
      } catch (error: unknown) {
        this.options.logger.error('poll failed', { queue: this.options.queueName, error: errorMessage(error) });
      }
      if (handled === 0 && !this.stopped) await this.pause();
    }
  }
}
