// The AWS deployment end to end on the emulators (DynamoDB Local with the deployment's tables,
// s3rver, local-aws-sqs, the KMS emulator, an SES capture server), wired only through the
// environment the CDK app sets: a message submitted over SMTP to the ingress (startIngress, as
// the ECS task runs it) lands in S3 and the scan queue; the real Lambda handler exports of the
// scan and deliver entries, invoked with SQS events built from the received queue messages, scan
// it, DKIM-sign it and deliver it to smtp-sink (smarthost mode) or to SES (ses mode, the SES
// message id kept in the message log); a DSN to the bounce listener reaches the suppression list
// through the bounce Lambda; an SES hard-bounce event through the bounce entry puts
// the recipient on the tenant's suppression list, and the ingress then refuses that recipient.
import { randomUUID } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sqsClient } from '../../adapters/aws/clients.js';
import { createQueueWithDeadLetter } from '../../adapters/aws/sqs-queue.js';
import { createTables } from '../../adapters/aws/tables.js';
import { loadConfig } from '../../core/config.js';
import { dkimDnsRecord, generateDkimKeyPair } from '../../core/dkim/keys.js';
import { envelopeSchema } from '../../core/envelope.js';
import { hashPassword, parseIdentity, type Tenant } from '../../core/identity.js';
import type { Stores } from '../../core/ports/stores.js';
import { openAwsStores, startIngress, type EntryMetrics, type IngressServices, type SesEvent } from '../../lambdas/aws-stores.js';
import { emulatorClientConfig, startDynamoDbLocal, startLocalSqs, startS3rver, type Emulator } from '../helpers/aws-emulators.js';
import { dsnFor, sendBounce } from '../helpers/bounce-client.js';
import { a, startDnsServer, TYPE, type DnsServer } from '../helpers/dns-server.js';
import { startKmsEmulator, type KmsEmulator } from '../helpers/kms-emulator.js';
import { startSesCapture, type SesCapture } from '../helpers/ses-emulators.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { makeTestCa, type TestCa } from '../helpers/tls-certs.js';

const PREFIX = 'outpost-e2e';
const BUCKET = 'outpost-e2e-messages';
const IDEMPOTENCY_TABLE = 'outpost-e2e-idempotency';
const PASSWORD = 'correct horse battery staple';
const SELECTOR = 'e2e1';
const OPERATOR_TOKEN = 'e2e-operator-token-0123456789abcdef';

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

let dynamo: Emulator;
let s3: Emulator;
let sqs: Emulator;
let kms: KmsEmulator;
let ses: SesCapture;
let sink: SmtpSink;
let dns: DnsServer;
let ca: TestCa;
let dataDir: string;
let stores: Stores;
let ingress: IngressServices;
let tenant: Tenant;
const queueUrls: Record<string, string> = {};
let savedEnv: NodeJS.ProcessEnv;
/** What the ingress task's EMF recorder is handed (smtp-ec2/main.ts passes telemetry('ingress')). */
const ingressCounts = new Map<string, number>();
const ingressMetrics: EntryMetrics = {
  inc: (name) => ingressCounts.set(name, (ingressCounts.get(name) ?? 0) + 1),
  observe: () => undefined,
  locked: () => undefined,
};

/** A TXT record of several character-strings (a 2048-bit key's record is longer than 255 bytes). */
function longTxt(value: string): { type: number; rdata: Buffer } {
  const parts: Buffer[] = [];
  for (let at = 0; at < value.length; at += 255) {
    const chunk = Buffer.from(value.slice(at, at + 255));
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return { type: TYPE.TXT, rdata: Buffer.concat(parts) };
}

beforeAll(async () => {
  savedEnv = { ...process.env };
  dataDir = mkdtempSync(join(tmpdir(), 'outpost-aws-e2e-'));
  [dynamo, s3, sqs, kms, ses, sink, dns] = await Promise.all([
    startDynamoDbLocal(),
    startS3rver([BUCKET]),
    startLocalSqs(),
    startKmsEmulator(),
    startSesCapture(),
    startSmtpSink(),
    startDnsServer({ 'example.org': [a('127.0.0.1')], 'acme.test': [a('127.0.0.1')] }),
  ]);
  ca = makeTestCa();

  const admin = new DynamoDBClient(emulatorClientConfig(dynamo));
  await createTables(admin, PREFIX, { ttl: false });
  await admin.send(
    new CreateTableCommand({ TableName: IDEMPOTENCY_TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }),
  );
  admin.destroy();
  const queues = sqsClient(emulatorClientConfig(sqs));
  for (const name of ['scan', 'deliver', 'bounce', 'ses-events']) queueUrls[name] = await createQueueWithDeadLetter(queues, `${PREFIX}-${name}`, { maxReceives: 3 });
  queues.destroy();

  // What the CDK app sets (lib/constructs/storage.ts, lib/outpost-stack.ts); the SDK finds the
  // emulators through its per-service endpoint variables. s3rver checks signatures against its
  // own key pair; the other emulators take any credentials.
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_ENDPOINT_URL_KMS: kms.endpoint,
    AWS_ENDPOINT_URL_SESV2: ses.endpoint,
    AWS_LAMBDA_FUNCTION_NAME: 'outpost-e2e',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    OUTPOST_LOG_LEVEL: 'error',
    OUTPOST_TABLE_PREFIX: PREFIX,
    OUTPOST_BUCKET: BUCKET,
    OUTPOST_KMS_KEY_ID: kms.keyArn,
    OUTPOST_SCAN_QUEUE_URL: queueUrls.scan,
    OUTPOST_DELIVER_QUEUE_URL: queueUrls.deliver,
    OUTPOST_BOUNCE_QUEUE_URL: queueUrls.bounce,
    OUTPOST_IDEMPOTENCY_TABLE: IDEMPOTENCY_TABLE,
    OUTPOST_HOSTNAME: 'relay.outpost.test',
    OUTPOST_DATA_DIR: dataDir,
    OUTPOST_DNS_SERVERS: dns.address,
    OUTPOST_SES_CONFIGURATION_SET: 'outpost-events',
    OUTPOST_OPERATOR_TOKEN: OPERATOR_TOKEN,
  });

  stores = openAwsStores();
  tenant = await stores.configStore.createTenant('acme');
  await stores.configStore.addDomain(tenant.id, 'acme.test');
  await stores.configStore.createUser({ tenantId: tenant.id, ...parseIdentity('sender@acme.test'), passwordHash: await hashPassword(PASSWORD) });
  const pair = await generateDkimKeyPair('rsa');
  await stores.dkimKeys.insert({ domain: 'acme.test', selector: SELECTOR, algorithm: 'rsa', ...pair, makeDefault: true });
  dns.zone[`${SELECTOR}._domainkey.acme.test`] = [longTxt(dkimDnsRecord('acme.test', SELECTOR, 'rsa', pair.publicKey).value)];

  const tls = ca.issue(['relay.outpost.test']);
  const config = loadConfig({ ...process.env, OUTPOST_LISTEN_ADDRESS: '127.0.0.1', OUTPOST_SMTP_PORT: '0', OUTPOST_SMTPS_PORT: '0', OUTPOST_BOUNCE_PORT: '0' });
  ingress = await startIngress(config, { key: Buffer.from(tls.key), cert: Buffer.from(tls.cert) }, { metrics: ingressMetrics });
}, 120_000);

afterAll(async () => {
  await ingress?.close();
  stores?.close();
  process.env = savedEnv;
  await Promise.all([dynamo?.stop(), s3?.stop(), sqs?.stop(), kms?.stop(), ses?.stop(), sink?.stop(), dns?.stop()]);
  ca?.remove();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A mail client submitting on 587 with STARTTLS and AUTH, as a tenant's application would. */
async function submit(to: string, subject: string): Promise<void> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: ingress.ports.submission,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user: 'sender@acme.test', pass: PASSWORD },
  });
  try {
    await transport.sendMail({ from: 'sender@acme.test', to, subject, text: `Hello from ${subject}.\n` });
  } finally {
    transport.close();
  }
}

/** Receives what the queue holds (as Lambda's event source mapping would), waiting up to `ms` for `count`. */
async function receive(queue: string, count: number, ms = 20_000): Promise<Message[]> {
  const client = sqsClient(emulatorClientConfig(sqs));
  const messages: Message[] = [];
  const until = Date.now() + ms;
  try {
    while (messages.length < count && Date.now() < until) {
      const { Messages } = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrls[queue], MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60, MessageSystemAttributeNames: ['All'] }));
      messages.push(...(Messages ?? []));
    }
  } finally {
    client.destroy();
  }
  return messages;
}

/** The SQS event Lambda hands a function for these messages (aws-lambda's SQSEvent). */
function sqsEvent(queue: string, messages: Message[]): SQSEvent {
  return {
    Records: messages.map((message) => ({
      messageId: message.MessageId ?? '',
      receiptHandle: message.ReceiptHandle ?? '',
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: message.Attributes?.SentTimestamp ?? String(Date.now()),
        SenderId: message.Attributes?.SenderId ?? 'AIDAEXAMPLE',
        ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${PREFIX}-${queue}`,
      awsRegion: 'us-east-1',
    })),
  };
}

function lambdaContext(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'e2e',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Invokes a Lambda handler on what its queue holds, then deletes the records it did not report failed (as the event source mapping does). */
async function invoke(handler: Handler, queue: string, messages: Message[]): Promise<SQSBatchResponse> {
  const response = await handler(sqsEvent(queue, messages), lambdaContext(`outpost-${queue}`));
  const failed = new Set(response.batchItemFailures.map((item) => item.itemIdentifier));
  const client = sqsClient(emulatorClientConfig(sqs));
  try {
    for (const message of messages) if (!failed.has(message.MessageId ?? '')) await client.send(new DeleteMessageCommand({ QueueUrl: queueUrls[queue], ReceiptHandle: message.ReceiptHandle }));
  } finally {
    client.destroy();
  }
  return response;
}

const ENTRIES = {
  scan: () => import('../../lambdas/scan/index.js'),
  deliver: () => import('../../lambdas/deliver/index.js'),
  bounce: () => import('../../lambdas/bounce/index.js'),
};

/** The entry's handler export, loaded fresh with the given delivery mode (each module builds its deps once). */
async function entry(name: 'scan' | 'deliver' | 'bounce', env: Record<string, string | undefined> = {}): Promise<Handler> {
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  vi.resetModules();
  const loaded: unknown = await ENTRIES[name]();
  const handler = (loaded as { handler?: unknown }).handler;
  if (typeof handler !== 'function') throw new Error(`lambdas/${name}/index.ts exports no handler`);
  return handler as Handler;
}

/** DKIM verification of the delivered bytes against the loopback DNS server. */
async function verifyDkim(raw: Buffer): Promise<{ status: string; domain: string }> {
  const resolver = new Resolver();
  resolver.setServers([dns.address]);
  const result = await dkimVerify(raw, { resolver: async (name: string, type: string) => (type === 'TXT' ? resolver.resolveTxt(name) : resolver.resolve4(name)) });
  const first = result.results[0];
  return { status: String(first?.status?.result), domain: String(first?.signingDomain) };
}

/** Submits one message and follows it through S3, the scan queue and the scan Lambda; returns its id. */
async function submitAndScan(to: string, subject: string): Promise<string> {
  await submit(to, subject);
  const [job, ...more] = await receive('scan', 1);
  expect(more).toEqual([]);
  const envelope = envelopeSchema.parse(JSON.parse(job?.Body ?? ''));
  expect(envelope).toMatchObject({ tenantId: tenant.id, mailFrom: 'sender@acme.test', rcptTo: [to] });
  // The message's bytes are in the bucket, under the key the envelope names.
  const s3Reader = new S3Client({ ...emulatorClientConfig(s3), forcePathStyle: true });
  const stored = await s3Reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: envelope.blobKey }));
  expect(await stored.Body?.transformToString()).toContain(`Subject: ${subject}`);
  s3Reader.destroy();

  const scan = await entry('scan');
  expect(await invoke(scan, 'scan', job ? [job] : [])).toEqual({ batchItemFailures: [] });
  const logged = await stores.log.get(envelope.messageId);
  expect(logged?.events.map((event) => event.event)).toContain('scanned');
  return envelope.messageId;
}

describe('the AWS deployment on the emulators', () => {
  it('smarthost mode: SMTP → S3 + SQS → scan Lambda → deliver Lambda → DKIM-signed at the smarthost; its DSN → bounce Lambda → suppressed, forwarded', async () => {
    const messageId = await submitAndScan('alice@example.org', 'via the smarthost');
    const deliver = await entry('deliver', { OUTPOST_DELIVERY_MODE: 'smarthost', OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}` });
    const jobs = await receive('deliver', 1);
    expect(await invoke(deliver, 'deliver', jobs)).toEqual({ batchItemFailures: [] });

    const [received] = await sink.waitForMessages(1);
    expect(received?.rcptTo).toEqual(['alice@example.org']);
    const raw = Buffer.from(received?.data.toString().replace(/\r?\n/g, '\r\n') ?? '');
    expect(raw.toString()).toContain('Subject: via the smarthost');
    expect(await verifyDkim(raw)).toEqual({ status: 'pass', domain: 'acme.test' });
    expect((await stores.log.get(messageId))?.message.status).toBe('delivered');
    expect(ingressCounts.get('outpost_messages_accepted_total')).toBeGreaterThanOrEqual(1);

    // The recipient's MX bounces it later: the DSN comes back to the BATV-tagged return path on the
    // ingress's bounce listener, goes through the bounce queue to the bounce Lambda, and the address
    // goes on the tenant's suppression list.
    expect(received?.mailFrom).toMatch(/^prvs=.*=sender@acme\.test$/);
    const dsn = dsnFor({ mailFrom: received?.mailFrom ?? '', data: received?.data ?? Buffer.alloc(0) }, ['alice@example.org']);
    const answered = await sendBounce(ingress.ports.bounce, '', received?.mailFrom ?? '', dsn);
    expect(answered.data).toMatch(/^250/);
    const bounces = await receive('bounce', 1);
    expect(await invoke(await entry('bounce'), 'bounce', bounces)).toEqual({ batchItemFailures: [] });
    expect(await stores.suppression.find(tenant.id, 'alice@example.org', Date.now())).toMatchObject({ source: 'bounce' });
    // The bounce is forwarded to the original sender (forwardBounces), through the deliver stage.
    const forwards = await receive('deliver', 1);
    expect(await invoke(deliver, 'deliver', forwards)).toEqual({ batchItemFailures: [] });
    const both = await sink.waitForMessages(2);
    expect(both.map((message) => message.rcptTo).sort()).toEqual([['alice@example.org'], ['sender@acme.test']]);
  });

  it('ses mode: delivered through SESv2 with the signed bytes, the SES id logged; an SES hard bounce suppresses the recipient', async () => {
    const messageId = await submitAndScan('bob@example.org', 'through SES');
    const deliver = await entry('deliver', { OUTPOST_DELIVERY_MODE: 'ses', OUTPOST_RELAY_HOST: undefined });
    const jobs = await receive('deliver', 1);
    expect(await invoke(deliver, 'deliver', jobs)).toEqual({ batchItemFailures: [] });

    expect(ses.sends).toHaveLength(1);
    const [sent] = ses.sends;
    expect(sent?.destination).toEqual(['bob@example.org']);
    expect(sent?.configurationSet).toBe('outpost-events');
    expect(await verifyDkim(sent?.raw ?? Buffer.alloc(0))).toEqual({ status: 'pass', domain: 'acme.test' });
    expect(await stores.log.findByProviderId(sent?.messageId ?? '')).toBe(messageId);
    expect((await stores.log.get(messageId))?.message.status).toBe('delivered');

    // SES reports the hard bounce as an event of the configuration set; EventBridge puts it into the ses-events queue.
    const bounceEvent: SesEvent = {
      id: randomUUID(),
      'detail-type': 'Email Bounced',
      source: 'aws.ses',
      time: new Date().toISOString(),
      detail: {
        eventType: 'Bounce',
        mail: { messageId: sent?.messageId ?? '', tags: { 'outpost-tenant': [tenant.id] } },
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          bouncedRecipients: [{ emailAddress: 'bob@example.org', action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 <bob@example.org>: user unknown' }],
          timestamp: new Date().toISOString(),
          feedbackId: 'feedback-1',
        },
      },
    };
    const queues = sqsClient(emulatorClientConfig(sqs));
    await queues.send(new SendMessageCommand({ QueueUrl: queueUrls['ses-events'], MessageBody: JSON.stringify(bounceEvent) }));
    queues.destroy();
    expect(await stores.suppression.find(tenant.id, 'bob@example.org', Date.now())).toBeUndefined();
    const bounce = await entry('bounce');
    expect(await invoke(bounce, 'ses-events', await receive('ses-events', 1))).toEqual({ batchItemFailures: [] });

    const suppressed = await stores.suppression.find(tenant.id, 'bob@example.org', Date.now());
    expect(suppressed).toMatchObject({ source: 'bounce' });
    expect(suppressed?.reason).toMatch(/5\.1\.1/);
    expect((await stores.log.get(messageId))?.events.map((event) => event.event)).toContain('bounce-received');
    // The next message to that address is refused at RCPT by the ingress, before it is stored.
    await expect(submit('bob@example.org', 'again')).rejects.toThrow(/suppress/i);
    expect(await receive('scan', 1, 2000)).toEqual([]);
    expect(ingressCounts.get('outpost_smtp_refusals_total')).toBeGreaterThanOrEqual(1);
  });

  it('the API Lambda on DynamoDB: the operator sees the tenant, the delivered messages and the suppressed address', async () => {
    vi.resetModules();
    const { handler } = await import('../../lambdas/api/index.js');
    const call = async (path: string): Promise<{ statusCode: number; body: unknown }> => {
      const event = {
        version: '2.0',
        routeKey: '$default',
        rawPath: path,
        rawQueryString: '',
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
        requestContext: { accountId: '000000000000', apiId: 'e2e', domainName: 'api.outpost.test', domainPrefix: 'api', http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.7', userAgent: 'e2e' }, requestId: randomUUID(), routeKey: '$default', stage: '$default', time: '', timeEpoch: Date.now() },
        isBase64Encoded: false,
      };
      const result = await handler(event, lambdaContext('outpost-api'));
      return { statusCode: result.statusCode, body: JSON.parse(result.body ?? 'null') };
    };
    const tenants = await call('/v1/tenants');
    expect(tenants.statusCode).toBe(200);
    expect(JSON.stringify(tenants.body)).toContain(tenant.id);
    const messages = await call(`/v1/tenants/${tenant.id}/messages`);
    expect(messages.statusCode).toBe(200);
    expect(JSON.stringify(messages.body)).toContain('bob@example.org');
    const suppressions = await call(`/v1/tenants/${tenant.id}/suppressions`);
    expect(suppressions.statusCode).toBe(200);
    expect(JSON.stringify(suppressions.body)).toContain('bob@example.org');
  });
});
