// Where the Lambda entries (and the ECS entries) get their stores on AWS: one factory per use
// case, each building the DynamoDB, S3, SQS, KMS and SES adapters from the environment the CDK
// app sets (OUTPOST_BUCKET, OUTPOST_TABLE_PREFIX, OUTPOST_*_QUEUE_URL, OUTPOST_KMS_KEY_ID...).
//
// `openAwsStores` builds the one `Stores` bundle (core/ports/stores.ts) from the AWS adapters;
// every factory below wires the same use cases as the single node (bin/single-node.ts) onto it:
// the scan, deliver and bounce stages, SES events, the API and the ingress. A factory that
// cannot build its stores throws; the entries turn that into a retried record (SQS) or a 503
// (API), so nothing is lost meanwhile: messages wait in their queues.
import { bounceHandlerDeps } from './bounce/handler.js';
import { makeAdmissionPolicy } from '../core/app/admission-policy.js';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { dynamoDbDocumentClient, kmsClient, s3Client, secretsManagerClient, sesClient, sqsClient, type AwsClientOptions } from '../adapters/aws/clients.js';
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
import { SesIdentities } from '../adapters/aws/ses-identities.js';
import { SesMailer } from '../adapters/aws/ses-mailer.js';
import { createResolver } from '../adapters/local/dns.js';
import { makeHardBounceReaction, type HardBounceReaction } from '../core/app/hard-bounce.js';
import { preparedAndRecorded } from '../core/app/prepare-outgoing.js';
import { recordingProviderIds } from '../core/app/record-provider-ids.js';
import { parseSesEvent } from '../core/bounce/ses-event.js';
import { makeOutgoingPreparer } from '../core/dkim/sign.js';
import { queueLifetimeMs, type MailHolds } from '../core/holds.js';
import type { UserLocks } from '../core/locks.js';
import { createLogger } from '../core/log.js';
import type { IngressPolicy } from '../core/policy/index.js';
import type { UserSettings } from '../core/settings.js';
import { userSettings } from '../core/stores.js';
import { suppressHardBounce } from '../core/suppression.js';
import { createListeners } from '../smtp-ec2/listeners.js';
import { lockEventMetrics } from './lock-metrics.js';
import { scanHandlerDeps, scanStartupWarnings } from './scan/handler.js';
import { SqsQueue } from '../adapters/aws/sqs-queue.js';
import { tableNames } from '../adapters/aws/tables.js';
import { loadConfig, type Config } from '../core/config.js';
import { purgeExpired } from '../core/housekeeping.js';
import { systemClock, type Clock, type Resolver } from '../core/ports.js';
import type { Stores } from '../core/ports/stores.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { ApiDeps } from './api/deps.js';
import type { BounceHandlerDeps } from './bounce/handler.js';
import type { DeliverDeps } from './deliver/handler.js';
import type { ScanHandlerDeps } from './scan/handler.js';

/** The services whose SDK clients the stores use. */
export type AwsService = 'dynamodb' | 's3' | 'sqs' | 'kms' | 'ses' | 'secretsmanager';

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

/** Options of the deps factories: the stores' (tests pass the emulators' endpoints) and the engines'. */
export interface AwsDepsOptions extends AwsStoresOptions {
  /** Config to use instead of loadConfig(env). */
  config?: Config;
}

/** What every use case of one container shares: stores, config, resolver, locks and holds, the ingress policy. */
interface AwsWiring {
  stores: Stores;
  config: Config;
  resolver: Resolver;
  locks: UserLocks;
  holds: MailHolds;
  policy: IngressPolicy;
  hardBounce: HardBounceReaction;
  settingsFor(userId: string): Promise<UserSettings>;
  clients: Partial<Record<AwsService, AwsClientOptions>> | undefined;
  env: NodeJS.ProcessEnv;
}

function awsWiring(metrics: EntryMetrics | undefined, options: AwsDepsOptions): AwsWiring {
  const env = options.env ?? process.env;
  const config = options.config ?? loadConfig(env);
  const stores = openAwsStores({ ...options, env, messageRetentionDays: options.messageRetentionDays ?? config.messageLog.retentionDays });
  const { clock } = stores;
  const resolver = createResolver(config.dns);
  const { locks, holds, policy } = makeAdmissionPolicy({ stores, config, clock, resolver, ...(metrics ? { onLockEvent: lockEventMetrics(metrics) } : {}) });
  const hardBounce = makeHardBounceReaction({
    suppression: stores.suppression,
    clock,
    countInvalidRecipient: (userId, recipient) => policy.recordHardBounces(userId, 1, { recipient }),
  });
  return {
    stores,
    config,
    resolver,
    locks,
    holds,
    policy,
    hardBounce,
    settingsFor: (userId) => userSettings(stores.configStore, userId, config.defaults),
    clients: options.clients,
    env,
  };
}

function clientSettings(wiring: Pick<AwsWiring, 'clients' | 'env'>, service: AwsService): AwsClientOptions {
  const given = wiring.clients?.[service];
  if (given) return given;
  const region = wiring.env.AWS_REGION ?? wiring.env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('environment variable AWS_REGION is not set (Lambda and ECS set it)');
  return { region };
}

/** A secret's string from Secrets Manager (read once per container). */
async function secretString(wiring: Pick<AwsWiring, 'clients' | 'env'>, secretId: string): Promise<string> {
  const client = secretsManagerClient(clientSettings(wiring, 'secretsmanager'));
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (SecretString === undefined) throw new Error(`secret ${secretId} holds no string`);
    return SecretString;
  } finally {
    client.destroy();
  }
}

/** The scan stage's dependencies: stores, the engines at OUTPOST_CLAMD / OUTPOST_RSPAMD_URL. */
export async function scanDeps(metrics: EntryMetrics, options: AwsDepsOptions = {}): Promise<ScanHandlerDeps> {
  const { stores, config, holds, policy, settingsFor } = awsWiring(metrics, options);
  const deps = scanHandlerDeps({ stores, config, policy, holds, settingsFor, metrics });
  for (const warning of scanStartupWarnings(deps)) deps.logger.warn(warning);
  return deps;
}

export type DeliveryMode = 'ses' | 'smarthost' | 'mx';

export function deliveryMode(env: NodeJS.ProcessEnv): DeliveryMode {
  const mode = env.OUTPOST_DELIVERY_MODE ?? 'ses';
  if (mode === 'ses' || mode === 'smarthost' || mode === 'mx') return mode;
  throw new Error(`OUTPOST_DELIVERY_MODE must be ses, smarthost or mx, not "${mode}"`);
}

/** Smarthost credentials: the secret OUTPOST_RELAY_CREDENTIALS_SECRET holds {"username": ..., "password": ...}. */
async function relayCredentials(wiring: AwsWiring): Promise<{ user: string; pass: string } | undefined> {
  const secretId = wiring.env.OUTPOST_RELAY_CREDENTIALS_SECRET;
  if (!secretId) return undefined;
  const parsed = relayCredentialsSchema.safeParse(JSON.parse(await secretString(wiring, secretId)));
  if (!parsed.success) throw new Error(`secret ${secretId} is not {"username": ..., "password": ...}`);
  return { user: parsed.data.username, pass: parsed.data.password };
}

const relayCredentialsSchema = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** The deliver stage's dependencies; the Mailer follows OUTPOST_DELIVERY_MODE. */
export async function deliverDeps(metrics: EntryMetrics, options: AwsDepsOptions = {}): Promise<DeliverDeps> {
  const wiring = awsWiring(metrics, options);
  const { stores, config, resolver, holds, hardBounce, settingsFor } = wiring;
  const mode = deliveryMode(wiring.env);
  if (mode === 'smarthost' && !config.delivery.relayHost) throw new Error('OUTPOST_DELIVERY_MODE=smarthost needs OUTPOST_RELAY_HOST');
  if (mode !== 'smarthost' && config.delivery.relayHost) throw new Error(`OUTPOST_RELAY_HOST is set but OUTPOST_DELIVERY_MODE is ${mode}`);
  const preparer = makeOutgoingPreparer({
    keys: stores.dkimKeys,
    settingsFor: (envelope) => settingsFor(envelope.userId),
    tenantOfDomain: async (domain) => (await stores.configStore.getDomain(domain))?.tenantId,
    batvKeys: stores.batvKeys,
    // BATV tags the envelope sender of direct and smarthost mail; SES puts its own sender there.
    directSmtp: mode !== 'ses',
    clock: stores.clock,
  });
  const credentials = mode === 'smarthost' ? await relayCredentials(wiring) : undefined;
  const logger = createLogger('deliver');
  const mailer =
    mode === 'ses'
      ? recordingProviderIds(
          new SesMailer({ client: sesClient(clientSettings(wiring, 'ses')), ...(wiring.env.OUTPOST_SES_CONFIGURATION_SET ? { configurationSet: wiring.env.OUTPOST_SES_CONFIGURATION_SET } : {}) }),
          stores.log,
          logger,
        )
      : undefined;
  return {
    blobs: stores.blobs,
    queue: stores.queue,
    log: stores.log,
    config,
    resolver,
    logger,
    clock: stores.clock,
    ...(credentials ? { smarthostAuth: credentials } : {}),
    ...(mailer ? { mailer } : {}),
    prepare: preparedAndRecorded(preparer, stores.log),
    onHardBounce: (envelope, recipient, diagnostic) => hardBounce({ tenantId: envelope.tenantId, userId: envelope.userId, recipient, reason: diagnostic }),
    holds,
    metrics,
  };
}

/** The bounce stage's dependencies (bounces from the listener on port 25). */
export async function bounceDeps(metrics: EntryMetrics, options: AwsDepsOptions = {}): Promise<BounceHandlerDeps> {
  const { stores, config, policy, settingsFor } = awsWiring(metrics, options);
  return bounceHandlerDeps({ stores, config, policy, settingsFor, metrics });
}

/**
 * Handles one SES event (bounce, complaint, delivery...) as EventBridge delivered it: the message
 * is found by the SES message id the deliver stage logged; a hard bounce's recipients get the same
 * reaction as a 5.1.x answer or a DSN (suppressed, counted against the user); a complaint's
 * recipients are suppressed too (they asked for no more mail). Other events are only logged.
 */
export async function sesEventHandler(metrics: EntryMetrics, options: AwsDepsOptions = {}): Promise<(event: SesEvent) => Promise<void>> {
  const { stores, hardBounce } = awsWiring(metrics, options);
  const logger = createLogger('ses-events');
  return async (event) => {
    const feedback = parseSesEvent(event);
    if (feedback.kind === 'other') {
      logger.info('SES event needs no action', { eventType: feedback.eventType, sesMessageId: feedback.sesMessageId });
      return;
    }
    const messageId = await stores.log.findByProviderId(feedback.sesMessageId);
    const found = messageId === undefined ? undefined : await stores.log.get(messageId);
    if (!found) {
      // Not ours to act on (a message sent through the identity by something else, or long expired from the log).
      logger.warn('SES event about a message not in the message log; ignored', { kind: feedback.kind, sesMessageId: feedback.sesMessageId, eventId: event.id });
      return;
    }
    const { tenantId, userId, id, rcptTo } = found.message;
    if (tenantId === null || userId === null) {
      // A notice of our own (a DSN) has no tenant whose suppression list it could go on.
      logger.warn('SES event about a message without a tenant and user; ignored', { kind: feedback.kind, messageId: id, eventId: event.id });
      return;
    }
    const sentTo = new Set(rcptTo.map((address) => address.toLowerCase()));
    if (feedback.kind === 'bounce') {
      const hard = feedback.hard.filter((recipient) => sentTo.has(recipient.address.toLowerCase()));
      for (const recipient of hard) {
        await hardBounce({ tenantId, userId, recipient: recipient.address, reason: ['ses', feedback.bounceType, recipient.status, recipient.diagnostic].filter(Boolean).join(' ').slice(0, 300) });
      }
      await stores.log.addEvent(id, 'bounce-received', {
        via: 'ses',
        sesMessageId: feedback.sesMessageId,
        bounceType: feedback.bounceType,
        recipients: [...feedback.hard, ...feedback.soft].map(({ address, status, action, hard: isHard, diagnostic }) => ({ address, status, action, hard: isHard, diagnostic })),
      });
      logger.info('SES bounce handled', { messageId: id, tenantId, userId, hard: hard.length, soft: feedback.soft.length });
      return;
    }
    const complained = feedback.complainedRecipients.filter((address) => sentTo.has(address.toLowerCase()));
    for (const address of complained) {
      await suppressHardBounce(stores.suppression, { tenantId, address, reason: `ses complaint${feedback.feedbackType ? ` (${feedback.feedbackType})` : ''}`, now: stores.clock.now() });
    }
    await stores.log.addEvent(id, 'complaint-received', { via: 'ses', sesMessageId: feedback.sesMessageId, recipients: complained, ...(feedback.feedbackType ? { feedbackType: feedback.feedbackType } : {}) });
    logger.warn('SES complaint handled', { messageId: id, tenantId, userId, recipients: complained.length });
  };
}

/** The API's dependencies; the operator token comes from OUTPOST_OPERATOR_TOKEN_SECRET. */
export async function apiDeps(options: AwsDepsOptions = {}): Promise<ApiDeps> {
  const wiring = awsWiring(undefined, options);
  const { stores, config, resolver, locks, holds } = wiring;
  const lockLogger = createLogger('api');
  const secretId = wiring.env.OUTPOST_OPERATOR_TOKEN_SECRET;
  const token = secretId ? await secretString(wiring, secretId) : wiring.env.OUTPOST_OPERATOR_TOKEN;
  const mode = deliveryMode(wiring.env);
  return {
    operatorToken: token,
    configStore: stores.configStore,
    messageLog: stores.log,
    apiKeys: stores.apiKeys,
    stats: stores.stats,
    clock: stores.clock,
    logger: lockLogger,
    defaults: config.defaults,
    locks,
    holds: { holds, store: stores.holdStore, queueLifetimeMs: queueLifetimeMs(config.delivery.retrySchedule) },
    dkimKeys: stores.dkimKeys,
    ...(mode === 'ses'
      ? { emailIdentities: new SesIdentities({ client: sesClient(clientSettings(wiring, 'ses')), ...(wiring.env.OUTPOST_SES_CONFIGURATION_SET ? { configurationSet: wiring.env.OUTPOST_SES_CONFIGURATION_SET } : {}) }) }
      : {}),
    suppression: stores.suppression,
    quarantine: { store: stores.quarantine, blobs: stores.blobs, queue: stores.queue },
    deadLetters: stores.queue,
    resolver,
    relayHostname: config.hostname,
    audit: stores.audit,
  };
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
  /** The ports listened on (the configured ones; the given ones when 0 was configured). */
  ports: { submission: number; submissions: number; bounce: number };
  /** SMTP sessions open now (published as the ActiveSessions metric that autoscaling tracks). */
  activeSessions(): number;
  /** Stops accepting, lets sessions in flight finish within config.smtp.closeTimeoutSeconds. */
  close(): Promise<void>;
}

/** Starts the submission, submissions and bounce listeners with AWS stores (session-time admission on DynamoDB). */
export async function startIngress(config: Config, tls: { key: Buffer; cert: Buffer }, options: AwsDepsOptions & { metrics?: EntryMetrics } = {}): Promise<IngressServices> {
  const { metrics } = options;
  const { stores, policy } = awsWiring(metrics, { ...options, config });
  const { clock } = stores;
  const { ingress, bounceListener } = createListeners({ config, stores, policy, clock, tls, ...(metrics ? { metrics } : {}) });
  try {
    const smtp = await ingress.listen(config.listenAddress, { submission: config.smtp.port, submissions: config.smtp.smtpsPort });
    const bounce = await bounceListener.listen(config.listenAddress, config.smtp.bouncePort);
    return {
      ports: { ...smtp, bounce },
      activeSessions: () => ingress.activeSessions,
      close: async () => {
        await Promise.all([ingress.close(), bounceListener.close()]);
        stores.close();
      },
    };
  } catch (error: unknown) {
    await Promise.all([ingress.close(), bounceListener.close()]).catch(() => undefined);
    stores.close();
    throw error;
  }
}

/** An SES sending event as EventBridge puts it into the `ses-events` queue. */
export interface SesEvent {
  id: string;
  'detail-type': string;
  source: 'aws.ses';
  time: string;
  detail: { eventType: string; mail: { messageId: string; tags?: Record<string, string[]> } } & Record<string, unknown>;
}
