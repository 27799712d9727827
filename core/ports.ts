// The narrow interfaces the core talks to. The core knows no AWS and no SQLite: adapters/local
// implements these on SQLite and the filesystem, adapters/aws on DynamoDB, S3, SQS and SES.
import type { Readable } from 'node:stream';

/** Milliseconds since the epoch. Injected so that windows and locks can be tested. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Message blobs (S3 | filesystem). `put*` resolves only once the bytes are durable. */
export interface BlobStore {
  put(key: string, data: Buffer): Promise<void>;
  /** Streams `source` into `key`; resolves with the byte count once durable. */
  putStream(key: string, source: Readable): Promise<number>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
}

/** Queue names used by the pipeline; each has a dead-letter queue `<name>-dlq`. */
export type QueueName = 'scan' | 'deliver' | 'bounce';

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** 1 on the first receive. */
  receiveCount: number;
  sentAt: number;
  firstReceivedAt: number;
}

/** A queue with SQS semantics (SQS | SQLite). */
export interface Queue {
  send(queue: string, body: string, options?: { delaySeconds?: number }): Promise<string>;
  receive(queue: string, options: { max: number; visibilityTimeoutSeconds: number }): Promise<ReceivedMessage[]>;
  delete(queue: string, receiptHandle: string): Promise<void>;
  changeVisibility(queue: string, receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void>;
  depth(queue: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
}

export const QUEUE_NAMES: readonly QueueName[] = ['scan', 'deliver', 'bounce'];

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

/** What travels in a queue message body between ingress, scan and deliver. */
export interface Envelope {
  /** The queue id given to the client in `250 2.0.0 queued as ID`. */
  messageId: string;
  tenantId: string;
  userId: string;
  /** How the sender was identified: the AUTH username or the source IP. */
  identity: string;
  /** Envelope sender; '' is the null sender (DSNs). */
  mailFrom: string;
  rcptTo: string[];
  blobKey: string;
  size: number;
  receivedAt: number;
  clientIp: string;
  helo: string;
}

/** One DNS resolver for every lookup Outpost makes (OUTPOST_DNS_SERVERS). */
export interface Resolver {
  resolveMx(domain: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
}

/** Structured JSON logging; never pass message bodies or credentials. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Encrypts secrets at rest (DKIM private keys, BATV keys) with a key the operator controls:
 * a local key file on the single node (adapters/local/secret-box.ts), KMS on AWS later.
 */
export interface SecretBox {
  seal(plain: Buffer): string;
  open(sealed: string): Buffer;
}
