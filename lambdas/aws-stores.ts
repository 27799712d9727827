// Where the Lambda entries (and the ECS entries) get their stores on AWS: one factory per use
// case, each building the DynamoDB, S3, SQS, KMS and SES adapters from the environment the CDK
// app sets (OUTPOST_BUCKET, OUTPOST_TABLE_PREFIX, OUTPOST_*_QUEUE_URL, OUTPOST_KMS_KEY_ID...).
//
// The AWS adapters (adapters/aws/) are not wired in yet: until they are, every factory fails
// with AdaptersNotWiredError, which the entries turn into a retried record (SQS) or a 503 (API).
// Nothing is lost meanwhile: messages wait in their queues. Wiring them is this file's job only.
import type { Config } from '../core/config.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { ApiDeps } from './api/deps.js';
import type { BounceHandlerDeps } from './bounce/handler.js';
import type { DeliverDeps } from './deliver/handler.js';
import type { ScanHandlerDeps } from './scan/handler.js';

export class AdaptersNotWiredError extends Error {
  override name = 'AdaptersNotWiredError';
  constructor(what: string) {
    super(`the AWS store adapters are not wired into lambdas/aws-stores.ts yet (${what})`);
  }
}

/**
 * What an entry may report back while its use case runs (EMF metrics): the counts and latencies
 * of the shared table (the deps factories hand it to the handlers as their `metrics`), and locks.
 */
export interface EntryMetrics extends MetricRecorder {
  /** An outgoing user was locked automatically. */
  locked(userId: string, tenantId: string): void;
}

/** The scan stage's dependencies: stores, the engines at OUTPOST_CLAMD / OUTPOST_RSPAMD_URL. */
export async function scanDeps(metrics: EntryMetrics): Promise<ScanHandlerDeps> {
  void metrics;
  throw new AdaptersNotWiredError('scan');
}

/** The deliver stage's dependencies; the Mailer follows OUTPOST_DELIVERY_MODE. */
export async function deliverDeps(metrics: EntryMetrics): Promise<DeliverDeps> {
  void metrics;
  throw new AdaptersNotWiredError('deliver');
}

/** The bounce stage's dependencies (bounces from the listener on port 25). */
export async function bounceDeps(metrics: EntryMetrics): Promise<BounceHandlerDeps> {
  void metrics;
  throw new AdaptersNotWiredError('bounce');
}

/** Handles one SES event (bounce, complaint, delivery...) as EventBridge delivered it. */
export async function sesEventHandler(metrics: EntryMetrics): Promise<(event: SesEvent) => Promise<void>> {
  void metrics;
  throw new AdaptersNotWiredError('SES events');
}

/** The API's dependencies; the operator token comes from OUTPOST_OPERATOR_TOKEN_SECRET. */
export async function apiDeps(): Promise<ApiDeps> {
  throw new AdaptersNotWiredError('api');
}

/** One housekeeping run: expired locks, old message records, orphan bounces, quarantine; returns counts. */
export async function housekeeping(): Promise<() => Promise<Record<string, number>>> {
  throw new AdaptersNotWiredError('housekeeping');
}

/** The SMTP listeners of one ingress task (smtp-ec2/main.ts), started on the configured ports. */
export interface IngressServices {
  /** SMTP sessions open now (published as the ActiveSessions metric that autoscaling tracks). */
  activeSessions(): number;
  /** Stops accepting, lets sessions in flight finish within config.smtp.closeTimeoutSeconds. */
  close(): Promise<void>;
}

/** Starts the submission, submissions and bounce listeners with AWS stores (session-time admission on DynamoDB). */
export async function startIngress(config: Config, tls: { key: Buffer; cert: Buffer }): Promise<IngressServices> {
  void config;
  void tls;
  throw new AdaptersNotWiredError('ingress');
}

/** An SES sending event as EventBridge puts it into the `ses-events` queue. */
export interface SesEvent {
  id: string;
  'detail-type': string;
  source: 'aws.ses';
  time: string;
  detail: { eventType: string; mail: { messageId: string; tags?: Record<string, string[]> } } & Record<string, unknown>;
}
