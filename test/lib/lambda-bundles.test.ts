// Each Lambda entry bundled as NodejsFunction bundles it (esbuild, ESM, the createRequire banner,
// nothing external) into a folder with no node_modules anywhere above it, then imported and
// invoked with real event shapes. No stores are configured here (OUTPOST_TABLE_PREFIX is unset;
// test/e2e/aws-flow.test.ts runs the wired flow), so the invocations stop where the stores would be
// needed: malformed records are refused before any store is touched, and a valid one fails cleanly
// and is left to SQS to retry.
import { CreateTableCommand, DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { build } from 'esbuild';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dkimDnsRecord, generateDkimKeyPair } from '../../core/dkim/keys.js';
import { BUNDLING } from '../../lib/constructs/outpost-function.js';
import { verifyWithDkimpy } from '../helpers/dkimpy.js';
import { emulatorClientConfig, startDynamoDbLocal, type Emulator } from '../helpers/aws-emulators.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRIES = ['scan', 'deliver', 'bounce', 'api', 'housekeeping'] as const;
type EntryName = (typeof ENTRIES)[number];
type Handler = (event: unknown, context: unknown) => Promise<unknown>;

let outDir: string;
// The idempotency records live in DynamoDB Local (the table the CDK app creates).
let dynamoDb: Emulator | undefined;
let dynamo: DynamoDBClient;
const IDEMPOTENCY_TABLE = 'Outpost-idempotency';
const handlers = new Map<EntryName, Handler>();

const context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'outpost-test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:outpost-test',
  memoryLimitInMB: '1024',
  awsRequestId: '5f0c9a1e-1111-4c2b-9f00-000000000001',
  logGroupName: '/aws/lambda/outpost-test',
  logStreamName: '2026/12/01/[$LATEST]0',
  getRemainingTimeInMillis: () => 30_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};

function sqsRecord(messageId: string, body: string, queue = 'scan') {
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1764633600000', SenderId: 'AIDAEXAMPLE', ApproximateFirstReceiveTimestamp: '1764633600001' },
    messageAttributes: {},
    md5OfBody: 'd41d8cd98f00b204e9800998ecf8427e',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:eu-west-1:123456789012:Outpost-${queue}`,
    awsRegion: 'eu-west-1',
  };
}

const envelope = {
  messageId: 'M1A2B3C4',
  tenantId: 't1',
  userId: 'u1',
  identity: 'alice@example.org',
  mailFrom: 'alice@example.org',
  rcptTo: ['bob@example.net'],
  blobKey: 'messages/2026-12-01/M1A2B3C4.eml',
  size: 512,
  receivedAt: 1764633600000,
  clientIp: '192.0.2.10',
  helo: 'client.example.org',
};

/** Bundles one entry as NodejsFunction does (ESM, banner, nothing external). */
async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [join(ROOT, entry)],
    bundle: true,
    outfile,
    format: 'esm',
    platform: 'node',
    target: BUNDLING.target,
    mainFields: [...BUNDLING.mainFields],
    banner: { js: BUNDLING.banner },
    external: [...BUNDLING.externalModules],
    logLevel: 'silent',
  });
}

async function startDynamoDb(): Promise<string> {
  dynamoDb = await startDynamoDbLocal();
  // A new connection for each request: the bundling below keeps this client idle for half a
  // minute, in which DynamoDB Local may close a kept-alive socket just as the next request goes
  // out on it ("socket hang up", which failed the suite once).
  dynamo = new DynamoDBClient({ ...emulatorClientConfig(dynamoDb), region: 'eu-west-1', requestHandler: { httpAgent: new Agent({ keepAlive: false }) } });
  await dynamo.send(new CreateTableCommand({ TableName: IDEMPOTENCY_TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }));
  return dynamoDb.endpoint;
}

/** The key Powertools writes for an entry's record: `<prefix>#<md5 of the JSON key, base64>`. */
const idempotencyId = (service: string, key: string): string => `outpost-${service}#${createHash('md5').update(JSON.stringify(key)).digest('base64')}`;

beforeAll(async () => {
  const endpoint = await startDynamoDb();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    OUTPOST_IDEMPOTENCY_TABLE: IDEMPOTENCY_TABLE,
    AWS_REGION: 'eu-west-1',
    AWS_LAMBDA_FUNCTION_NAME: 'outpost-test',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  outDir = mkdtempSync(join(tmpdir(), 'outpost-bundles-'));
  for (const name of ENTRIES) {
    const outfile = join(outDir, name, 'index.mjs');
    await bundle(`lambdas/${name}/index.ts`, outfile);
    const loaded: unknown = await import(pathToFileURL(outfile).href);
    const handler = (loaded as { handler?: unknown }).handler;
    if (typeof handler !== 'function') throw new Error(`${name} bundle exports no handler`);
    handlers.set(name, handler as Handler);
  }
}, 180_000);

afterAll(async () => {
  await dynamoDb?.stop();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** The batch item failures, in record order (records are handled in parallel). */
async function failedIds(name: EntryName, event: unknown): Promise<string[]> {
  const result = (await invoke(name, event)) as { batchItemFailures: Array<{ itemIdentifier: string }> };
  return result.batchItemFailures.map((item) => item.itemIdentifier).sort();
}

const invoke = (name: EntryName, event: unknown) => {
  const handler = handlers.get(name);
  if (!handler) throw new Error(`no ${name} handler`);
  return handler(event, context);
};

describe('Lambda bundles', () => {
  it('are single ESM files with no node_modules next to them', () => {
    for (const name of ENTRIES) expect(readdirSync(join(outDir, name))).toEqual(['index.mjs']);
  });

  it('scan: a batch with malformed records reports exactly those as batch item failures', async () => {
    const failed = await failedIds('scan', {
      Records: [sqsRecord('sqs-1', 'not json'), sqsRecord('sqs-2', JSON.stringify({ messageId: 'M1' }))],
    });
    expect(failed).toEqual(['sqs-1', 'sqs-2']);
  });

  it('scan: an event that is not an SQS batch is refused with a clean error', async () => {
    await expect(invoke('scan', { detail: 'not a batch' })).rejects.toThrow(/Unexpected batch type/);
  });

  it('scan: a message already scanned (its key completed) is acknowledged without running again; a failed one leaves no record, so SQS retries run', async () => {
    const done = { ...envelope, messageId: 'MDONE0001' };
    const expiration = Math.floor(Date.now() / 1000) + 3600;
    await dynamo.send(new PutItemCommand({ TableName: IDEMPOTENCY_TABLE, Item: { id: { S: idempotencyId('scan', 'MDONE0001#scan') }, status: { S: 'COMPLETED' }, expiration: { N: String(expiration) }, data: { M: { handled: { BOOL: true } } } } }));
    const failed = await failedIds('scan', { Records: [sqsRecord('sqs-done', JSON.stringify(done)), sqsRecord('sqs-new', JSON.stringify(envelope))] });
    // The new message reached the use case (whose stores are not configured here) and failed; the done one did not run.
    expect(failed).toEqual(['sqs-new']);
    const items = await dynamo.send(new ScanCommand({ TableName: IDEMPOTENCY_TABLE }));
    expect(items.Items?.map((item) => item['id']?.S)).toEqual([idempotencyId('scan', 'MDONE0001#scan')]);
  });

  it('deliver: a job waiting for its retry time goes on to the stores (not configured here) and is left to SQS to retry; a malformed one too', async () => {
    const waiting = { envelope, attempt: 2, pending: envelope.rcptTo, bounced: [], notBefore: Date.now() + 3_600_000 };
    const failed = await failedIds('deliver', {
      Records: [sqsRecord('sqs-3', JSON.stringify(waiting), 'deliver'), sqsRecord('sqs-4', JSON.stringify({ envelope, attempt: 0 }), 'deliver')],
    });
    expect(failed).toEqual(['sqs-3', 'sqs-4']);
  });

  it('bounce: an SES event and a malformed record are both retried, never dropped', async () => {
    const sesEvent = { id: 'ev-1', 'detail-type': 'Email Bounced', source: 'aws.ses', time: '2026-12-01T00:00:00Z', detail: { eventType: 'Bounce', mail: { messageId: 'ses-1' } } };
    const failed = await failedIds('bounce', { Records: [sqsRecord('sqs-5', 'garbage', 'bounce'), sqsRecord('sqs-6', JSON.stringify(sesEvent), 'ses-events')] });
    expect(failed).toEqual(['sqs-5', 'sqs-6']);
  });

  it('api: an HTTP API request gets a problem response while the stores are unavailable; a non-HTTP event gets 400', async () => {
    const request = {
      version: '2.0',
      routeKey: '$default',
      rawPath: '/v1/tenants',
      rawQueryString: '',
      headers: { host: 'api.example.org', authorization: 'Bearer nope' },
      requestContext: {
        accountId: '123456789012', apiId: 'abc123', domainName: 'api.example.org', domainPrefix: 'api',
        http: { method: 'GET', path: '/v1/tenants', protocol: 'HTTP/1.1', sourceIp: '192.0.2.20', userAgent: 'test' },
        requestId: 'req-1', routeKey: '$default', stage: '$default', time: '01/Dec/2026:00:00:00 +0000', timeEpoch: 1764633600000,
      },
      isBase64Encoded: false,
    };
    const unavailable = (await invoke('api', request)) as { statusCode: number; headers: Record<string, string>; body: string };
    expect(unavailable.statusCode).toBe(503);
    expect(unavailable.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(unavailable.body)).toMatchObject({ status: 503, title: 'Service Unavailable' });
    const wrong = (await invoke('api', { Records: [] })) as { statusCode: number };
    expect(wrong.statusCode).toBe(400);
  });

  it('housekeeping: a scheduled event fails with the reason when the deployment environment is missing', async () => {
    const scheduled = { version: '0', id: 'e-1', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012', time: '2026-12-01T00:00:00Z', region: 'eu-west-1', resources: [], detail: {} };
    // The stores are built from the AWS adapters (lambdas/aws-stores.ts); this test sets no table prefix.
    await expect(invoke('housekeeping', scheduled)).rejects.toThrow(/OUTPOST_TABLE_PREFIX is not set/);
  });

  it('DKIM signing works from a bundle (mailauth imported statically): dkimpy verifies the signature', async () => {
    const outfile = join(outDir, 'dkim', 'sign.mjs');
    await bundle('core/dkim/sign.ts', outfile);
    const loaded = (await import(pathToFileURL(outfile).href)) as { signMessage?: unknown };
    const signMessage = loaded.signMessage as (raw: Buffer, opts: { domain: string; selector: string; privateKey: string; algorithm: 'rsa' }) => Promise<Buffer>;
    const keys = await generateDkimKeyPair('rsa');
    const raw = Buffer.from('From: alice@example.org\r\nTo: bob@example.net\r\nSubject: bundled\r\nDate: Tue, 01 Dec 2026 00:00:00 +0000\r\nMessage-ID: <b1@example.org>\r\n\r\nHello from a Lambda bundle.\r\n');
    const signed = await signMessage(raw, { domain: 'example.org', selector: 'lambda', privateKey: keys.privateKeyPem, algorithm: 'rsa' });
    const result = await verifyWithDkimpy(signed, { 'lambda._domainkey.example.org': dkimDnsRecord('example.org', 'lambda', 'rsa', keys.publicKey).value });
    expect(result.results).toEqual([true]);
  });
});
