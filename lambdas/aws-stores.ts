// Where the Lambda entries (and the ECS entries) get their stores on AWS: one factory per use
// case, each building the DynamoDB, S3, SQS, KMS and SES adapters from the environment the CDK
// app sets (OUTPOST_BUCKET, OUTPOST_TABLE_PREFIX, OUTPOST_*_QUEUE_URL, OUTPOST_KMS_KEY_ID...).
//
// `openAwsStores` builds the one `Stores` bundle (core/ports/stores.ts) from the AWS adapters;
// housekeeping runs on it. The pipeline stages, the API and the ingress are not wired to it yet:
// their factories still fail with AdaptersNotWiredError, which the entries turn into a retried
// record (SQS) or a 503 (API). Nothing is lost meanwhile: messages wait in their queues.
import { dynamoDbDocumentClient, kmsClient, s3Client, sqsClient, type AwsClientOptions } from '../adapters/aws/clients.js';
import { DynamoDbApiKeyStore } from '../adapters/aws/dynamodb-api-key-store.js';
import { DynamoDbAuditLog } from '../adapters/aws/dynamodb-audit-log.js';
import { DynamoDbBatvKeyStore } from '../adapters/aws/dynamodb-batv-key-store.js';
import { DynamoDbConfigStore } from '../adapters/aws/dynamodb-config-store.js';
import { DynamoDbCounterStore } from '../adapters/aws/dynamodb-counter-store.js';
import { DynamoDbDkimKeyStore } from '../adapters/aws/dynamodb-dkim-key-store.js';
import { DynamoDbFingerprintStore } from '../adapters/aws/dynamodb-fingerprint-store.js';
import { DynamoDbHoldStore } from '../adapters/aws/dynamodb-hold-store.js';
import { DynamoDbLockStore } from '../adapters/aws/dynamodb-lock-store.js';
import { DynamoDbLoginSourceStore } from '../adapters/aws/dynamodb-login-source-store.js';
import { DynamoDbMessageLog } from '../adapters/aws/dynamodb-message-log.js';
import { DynamoDbMessageStats } from '../adapters/aws/dynamodb-message-stats.js';
import { DynamoDbQuarantineStore } from '../adapters/aws/dynamodb-quarantine-store.js';
import { DynamoDbSuppressionList } from '../adapters/aws/dynamodb-suppression-list.js';
import { KmsSecretBox } from '../adapters/aws/kms-secret-box.js';
import { S3BlobStore } from '../adapters/aws/s3-blob-store.js';
import { SqsQueue } from '../adapters/aws/sqs-queue.js';
import { tableNames } from '../adapters/aws/tables.js';
import { loadConfig, type Config } from '../core/config.js';
import { purgeExpired } from '../core/housekeeping.js';
import { systemClock, type Clock } from '../core/ports.js';
import type { Stores } from '../core/ports/stores.js';
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

/** The services whose SDK clients the stores use. */
export type AwsService = 'dynamodb' | 's3' | 'sqs' | 'kms';

export interface AwsStoresOptions {
  /** Where the names come from (default process.env): what lib/constructs/storage.ts sets. */
  env?: NodeJS.ProcessEnv;
  /** Client settings per service (the emulators' endpoints in tests); default: AWS_REGION, the role's credentials. */
  clients?: Partial<Record<AwsService, AwsClientOptions>>;
  clock?: Clock;
  /** messageLog.retentionDays: how long message-log items live before DynamoDB's TTL removes them. */
  messageRetentionDays?: number;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set (the CDK app sets it)`);
  return value;
}

/**
 * Every store of the AWS deployment, from the environment the CDK app sets: OUTPOST_TABLE_PREFIX
 * (tables `<prefix>-<table>`), OUTPOST_BUCKET, OUTPOST_KMS_KEY_ID (blobs' SSE-KMS and the sealing
 * of DKIM and BATV keys), OUTPOST_SCAN_QUEUE_URL, OUTPOST_DELIVER_QUEUE_URL, OUTPOST_BOUNCE_QUEUE_URL.
 * Built once per container (cold start); `close` destroys the SDK clients.
 */
export function openAwsStores(options: AwsStoresOptions = {}): Stores {
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const settings = (service: AwsService): AwsClientOptions => {
    const given = options.clients?.[service];
    if (given) return given;
    if (!region) throw new Error('environment variable AWS_REGION is not set (Lambda and ECS set it)');
    return { region };
  };
  const tables = tableNames(required(env, 'OUTPOST_TABLE_PREFIX'));
  const kmsKeyId = required(env, 'OUTPOST_KMS_KEY_ID');
  const dynamo = dynamoDbDocumentClient(settings('dynamodb'));
  const s3 = s3Client({ ...settings('s3'), forcePathStyle: options.clients?.s3 !== undefined });
  const sqs = sqsClient(settings('sqs'));
  const kms = kmsClient(settings('kms'));
  const box = new KmsSecretBox({ client: kms, keyId: kmsKeyId, clock });
  const client = dynamo;
  return {
    clock,
    configStore: new DynamoDbConfigStore({ client, table: tables.config, clock }),
    log: new DynamoDbMessageLog({ client, table: tables.messages, clock, retentionDays: options.messageRetentionDays }),
    queue: new SqsQueue({
      client: sqs,
      urls: { scan: required(env, 'OUTPOST_SCAN_QUEUE_URL'), deliver: required(env, 'OUTPOST_DELIVER_QUEUE_URL'), bounce: required(env, 'OUTPOST_BOUNCE_QUEUE_URL') },
    }),
    blobs: new S3BlobStore({ client: s3, bucket: required(env, 'OUTPOST_BUCKET'), kmsKeyId }),
    counters: new DynamoDbCounterStore({ client, table: tables.counters, clock }),
    lockStore: new DynamoDbLockStore({ client, table: tables.locks }),
    holdStore: new DynamoDbHoldStore({ client, table: tables.holds }),
    loginSources: new DynamoDbLoginSourceStore({ client, table: tables.logins }),
    fingerprints: new DynamoDbFingerprintStore({ client, table: tables.fingerprints }),
    quarantine: new DynamoDbQuarantineStore({ client, table: tables.quarantine }),
    dkimKeys: new DynamoDbDkimKeyStore({ client, table: tables.config, box, clock }),
    batvKeys: new DynamoDbBatvKeyStore({ client, table: tables.config, box }),
    suppression: new DynamoDbSuppressionList({ client, table: tables.suppressions, clock }),
    apiKeys: new DynamoDbApiKeyStore({ client, table: tables.config }),
    stats: new DynamoDbMessageStats({ client, table: tables.messages }),
    audit: new DynamoDbAuditLog({ client, table: tables.audit, clock }),
    close: () => {
      dynamo.destroy();
      s3.destroy();
      sqs.destroy();
      kms.destroy();
    },
  };
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

/**
 * One housekeeping run on the AWS stores (core/housekeeping.ts); returns what it removed. Orphan
 * bounce files need no sweep here: S3 lifecycle rules expire them.
 */
export async function housekeeping(): Promise<() => Promise<Record<string, number>>> {
  const config = loadConfig();
  const stores = openAwsStores({ messageRetentionDays: config.messageLog.retentionDays });
  return () => purgeExpired(stores, config, stores.clock);
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
