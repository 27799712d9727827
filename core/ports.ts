// The narrow interfaces the core talks to. The core knows no AWS and no SQLite: adapters/local
// implements these on SQLite and the filesystem, adapters/aws on DynamoDB, S3, SQS and SES.
// Each store port lives in its own file under core/ports/ with the promises every implementation
// keeps; they are re-exported here so that existing imports keep working.
import type { Maybe } from './maybe.js';
export type { BlobStore } from './ports/blob-store.js';
export { QUEUE_NAMES, type DeadLetter, type DeadLetterQueues, type Queue, type QueueName, type ReceivedMessage } from './ports/queue.js';
export type { SecretBox } from './ports/secret-box.js';

/** Milliseconds since the epoch. Injected so that windows and locks can be tested. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

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
/** DNS. A Maybe (core/maybe.ts): a resolver with a cache answers a kept answer at once; a failure is a rejected promise. */
export interface Resolver {
  resolveMx(domain: string): Maybe<Array<{ exchange: string; priority: number }>>;
  resolve4(name: string): Maybe<string[]>;
  resolve6(name: string): Maybe<string[]>;
  resolveTxt(name: string): Maybe<string[][]>;
}

/** Structured JSON logging; never pass message bodies or credentials. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}
