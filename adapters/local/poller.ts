// The single node's stand-in for the Lambda SQS event source: receives batches from the SQLite
// queue, hands them to the same handler the Lambda runs, and deletes what the handler did not
// report in `batchItemFailures` (those become visible again after the visibility timeout).
import type { Logger, Queue } from '../../core/ports.js';
import type { SqsEvent, SqsHandler } from '../../core/sqs-event.js';
import { errorMessage } from '../../core/log.js';

export interface PollerOptions {
  queue: Queue;
  queueName: string;
  handler: SqsHandler;
  batchSize: number;
  visibilityTimeoutSeconds: number;
  pollIntervalMs: number;
  logger: Logger;
}

export class Poller {
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: PollerOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Lets a producer skip the poll interval when it has just queued something. */
  nudge(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
  }

  /** Receives and handles one batch; returns how many records it handled. */
  async pollOnce(): Promise<number> {
    const { queue, queueName, handler, batchSize, visibilityTimeoutSeconds } = this.options;
    const messages = await queue.receive(queueName, { max: batchSize, visibilityTimeoutSeconds });
    if (messages.length === 0) return 0;
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
      return messages.length;
    }
    for (const message of messages) {
      if (!failed.has(message.messageId)) await queue.delete(queueName, message.receiptHandle);
    }
    return messages.length;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let handled = 0;
      try {
        handled = await this.pollOnce();
      } catch (error: unknown) {
        this.options.logger.error('poll failed', { queue: this.options.queueName, error: errorMessage(error) });
      }
      if (handled === 0 && !this.stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.pollIntervalMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }
}
