// The pipeline queues with SQS semantics: SQS on AWS (adapters/aws/sqs-queue.ts), SQLite on the
// single node (adapters/local/queue.ts). Contract: test/core/queue.contract.ts.
//
// Promises every implementation keeps (at-least-once delivery, as SQS):
// - a sent body is handed out intact; while it is in flight (received, not yet deleted) nobody
//   else receives it, until its visibility timeout passes, then it is received again with a new
//   receipt handle (a stale handle deletes nothing);
// - a delayed message stays hidden until its delay has passed; `receive` returns at most `max`;
// - after `maxReceives` receives without a delete the message moves to `<queue>-dlq`;
// - `send` resolves only once the message is durable (the ingress answers 250 after it).
// Consumers must therefore be idempotent: a message may be handled twice.

/** Queue names used by the pipeline; each has a dead-letter queue `<name>-dlq`. */
export type QueueName = 'scan' | 'deliver' | 'bounce';

export const QUEUE_NAMES: readonly QueueName[] = ['scan', 'deliver', 'bounce'];

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** 1 on the first receive. */
  receiveCount: number;
  sentAt: number;
  firstReceivedAt: number;
}

export interface Queue {
  send(queue: string, body: string, options?: { delaySeconds?: number }): Promise<string>;
  receive(queue: string, options: { max: number; visibilityTimeoutSeconds: number }): Promise<ReceivedMessage[]>;
  delete(queue: string, receiptHandle: string): Promise<void>;
  changeVisibility(queue: string, receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void>;
  depth(queue: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
}

/** A message the queue moved to `<queue>-dlq` after `maxReceives` receives without success. */
export interface DeadLetter {
  queue: string;
  /** The queue's own id of the message (not Outpost's message id). */
  queueMessageId: string;
  receiveCount: number;
  /** Outpost's message id, when the body names one (an envelope, or a job carrying one). */
  messageId?: string;
}

/**
 * Dead-letter queues the operator can act on (SQLite; on AWS, SQS's redrive). Moving messages
 * back is for after the cause is fixed: they are received again as if new (receive count 0).
 */
export interface DeadLetterQueues {
  /** Moves every message of `<queue>-dlq` back to `queue`; resolves with how many moved. */
  redrive(queue: QueueName): Promise<number>;
}
