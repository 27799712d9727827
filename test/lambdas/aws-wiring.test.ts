// The deps factories of lambdas/aws-stores.ts beyond the happy path of test/e2e/aws-flow.test.ts,
// on the emulators (DynamoDB Local, s3rver, local-aws-sqs, the KMS emulator): the delivery mode
// and relay host must agree; SES complaints suppress; SES events about messages Outpost does not
// know, or naming recipients the message did not have, change nothing; hard bounces learnt from
// SES count against the user up to an automatic lock, which the entry's metrics see; the API gets
// SES identities in `ses` mode only.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../adapters/aws/clients.js';
import { createQueueWithDeadLetter } from '../../adapters/aws/sqs-queue.js';
import { createTables } from '../../adapters/aws/tables.js';
import { deliverJobBody } from '../../core/app/deliver-job.js';
import { parseConfig } from '../../core/config.js';
import type { Tenant } from '../../core/identity.js';
import type { Stores } from '../../core/ports/stores.js';
import { apiDeps, deliverDeps, deliveryMode, openAwsStores, sesEventHandler, type AwsDepsOptions, type EntryMetrics, type SesEvent } from '../../lambdas/aws-stores.js';
import { emulatorClientConfig, startDynamoDbLocal, startLocalSqs, startS3rver, type Emulator } from '../helpers/aws-emulators.js';
import { makeDeliverHandler } from '../../lambdas/deliver/handler.js';
import { startKmsEmulator, type KmsEmulator } from '../helpers/kms-emulator.js';
import { startSecretsManagerEmulator, type SecretsManagerEmulator } from '../helpers/secrets-manager-emulator.js';

let dynamo: Emulator;
let s3: Emulator;
let sqs: Emulator;
let kms: KmsEmulator;
let secrets: SecretsManagerEmulator;
const RELAY_SECRET = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:outpost-relay';
const TOKEN_SECRET = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:outpost-operator';
let stores: Stores;
let options: AwsDepsOptions;
let tenant: Tenant;
let userId: string;
const locked: Array<{ userId: string; tenantId: string }> = [];
const metrics: EntryMetrics = { inc: () => undefined, observe: () => undefined, locked: (user, tenantId) => locked.push({ userId: user, tenantId }) };

beforeAll(async () => {
  [dynamo, s3, sqs, kms, secrets] = await Promise.all([
    startDynamoDbLocal(),
    startS3rver(['outpost-wiring-messages']),
    startLocalSqs(),
    startKmsEmulator(),
    startSecretsManagerEmulator({ [RELAY_SECRET]: JSON.stringify({ username: 'relay-user', password: 'relay-pass' }), [TOKEN_SECRET]: 'operator-token-from-secret' }),
  ]);
  const admin = new DynamoDBClient(emulatorClientConfig(dynamo));
  await createTables(admin, 'outpost-wiring', { ttl: false });
  admin.destroy();
  const queues = sqsClient(emulatorClientConfig(sqs));
  const [scan, deliver, bounce] = await Promise.all(['scan', 'deliver', 'bounce'].map((name) => createQueueWithDeadLetter(queues, `outpost-wiring-${name}`, { maxReceives: 2 })));
  queues.destroy();
  options = {
    env: {
      AWS_REGION: 'us-east-1',
      OUTPOST_TABLE_PREFIX: 'outpost-wiring',
      OUTPOST_BUCKET: 'outpost-wiring-messages',
      OUTPOST_KMS_KEY_ID: kms.keyArn,
      OUTPOST_SCAN_QUEUE_URL: scan,
      OUTPOST_DELIVER_QUEUE_URL: deliver,
      OUTPOST_BOUNCE_QUEUE_URL: bounce,
    },
    clients: { dynamodb: emulatorClientConfig(dynamo), s3: emulatorClientConfig(s3), sqs: emulatorClientConfig(sqs), kms: emulatorClientConfig(kms), secretsmanager: emulatorClientConfig(secrets), ses: { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } } },
    config: parseConfig({ dataDir: '/nonexistent', hostname: 'relay.outpost.test' }),
  };
  stores = openAwsStores(options);
  tenant = await stores.configStore.createTenant('wiring');
  await stores.configStore.addDomain(tenant.id, 'wiring.test');
  const user = await stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'app@wiring.test', domain: 'wiring.test', passwordHash: null, settings: { invalidRecipientLimit: 1 } });
  userId = user.id;
}, 120_000);

afterAll(async () => {
  stores?.close();
  await Promise.all([dynamo?.stop(), s3?.stop(), sqs?.stop(), kms?.stop(), secrets?.stop()]);
});

/** A message in the log, sent through SES under `sesId`. */
async function sentThroughSes(rcptTo: string[]): Promise<{ id: string; sesId: string }> {
  const id = `M${randomUUID().slice(0, 8)}`;
  const sesId = `0100-${randomUUID()}`;
  await stores.log.create({ id, tenantId: tenant.id, userId, identity: 'app@wiring.test', mailFrom: 'app@wiring.test', rcptTo, size: 10, subject: null, status: 'queued', receivedAt: Date.now() });
  await stores.log.recordProviderIds(id, [sesId]);
  return { id, sesId };
}

function sesEvent(eventType: string, sesId: string, detail: Record<string, unknown>): SesEvent {
  return { id: randomUUID(), 'detail-type': `Email ${eventType}`, source: 'aws.ses', time: new Date().toISOString(), detail: { eventType, mail: { messageId: sesId }, ...detail } };
}

const hardBounce = (addresses: string[]): Record<string, unknown> => ({
  bounce: { bounceType: 'Permanent', bounceSubType: 'General', bouncedRecipients: addresses.map((emailAddress) => ({ emailAddress, action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 no such user' })) },
});

describe('deliverDeps', () => {
  it('refuses a delivery mode it does not know, smarthost mode without a relay host, and a relay host in another mode', async () => {
    expect(() => deliveryMode({ OUTPOST_DELIVERY_MODE: 'pigeon' })).toThrow(/must be ses, smarthost or mx/);
    expect(deliveryMode({})).toBe('ses');
    await expect(deliverDeps(metrics, { ...options, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'smarthost' } })).rejects.toThrow(/needs OUTPOST_RELAY_HOST/);
    const withRelay = { ...options, config: parseConfig({ dataDir: '/nonexistent', delivery: { relayHost: '127.0.0.1:2525' } }) };
    await expect(deliverDeps(metrics, { ...withRelay, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'ses' } })).rejects.toThrow(/OUTPOST_RELAY_HOST is set but OUTPOST_DELIVERY_MODE is ses/);
    const smarthost = await deliverDeps(metrics, { ...withRelay, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'smarthost' } });
    expect(smarthost.mailer).toBeUndefined();
    const ses = await deliverDeps(metrics, { ...options, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'ses' } });
    expect(ses.mailer).toBeDefined();
  });
});

/** A smarthost that takes mail only after AUTH with the right credentials. */
async function startAuthRelay(): Promise<{ port: number; received: Array<{ user: unknown; rcptTo: string[]; data: string }>; logins: string[]; stop(): Promise<void> }> {
  const received: Array<{ user: unknown; rcptTo: string[]; data: string }> = [];
  const logins: string[] = [];
  const server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push(`${auth.username}:${auth.password}`);
      if (auth.username === 'relay-user' && auth.password === 'relay-pass') callback(null, { user: auth.username });
      else callback(new Error('535 5.7.8 authentication failed'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({ user: session.user, rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address), data: Buffer.concat(chunks).toString() });
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { port, received, logins, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('smarthost credentials', () => {
  it('the deliver stage logs in to the smarthost with the username and password of OUTPOST_RELAY_CREDENTIALS_SECRET', async () => {
    const relay = await startAuthRelay();
    try {
      const deps = await deliverDeps(metrics, {
        ...options,
        config: parseConfig({ dataDir: '/nonexistent', hostname: 'relay.outpost.test', delivery: { relayHost: `127.0.0.1:${relay.port}` } }),
        env: { ...options.env, OUTPOST_DELIVERY_MODE: 'smarthost', OUTPOST_RELAY_CREDENTIALS_SECRET: RELAY_SECRET },
      });
      expect(secrets.reads.get(RELAY_SECRET)).toBe(1);
      const id = `M${randomUUID().slice(0, 8)}`;
      const envelope = { messageId: id, tenantId: tenant.id, userId, identity: 'app@wiring.test', mailFrom: 'app@wiring.test', rcptTo: ['carol@example.org'], blobKey: `messages/${id}.eml`, size: 40, receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'client.test' };
      await stores.blobs.put(envelope.blobKey, Buffer.from('From: app@wiring.test\r\nTo: carol@example.org\r\nSubject: relayed\r\n\r\nhello\r\n'));
      await stores.log.create({ id, tenantId: tenant.id, userId, identity: envelope.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, subject: 'relayed', status: 'queued', receivedAt: envelope.receivedAt });
      const handler = makeDeliverHandler(deps);
      const now = String(Date.now());
      const response = await handler({
        Records: [{ messageId: 'sqs-1', receiptHandle: 'r-1', body: deliverJobBody(envelope), attributes: { ApproximateReceiveCount: '1', SentTimestamp: now, ApproximateFirstReceiveTimestamp: now }, eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:outpost-wiring-deliver' }],
      });
      expect(response.batchItemFailures).toEqual([]);
      expect(relay.logins).toEqual(['relay-user:relay-pass']);
      expect(relay.received).toMatchObject([{ user: 'relay-user', rcptTo: ['carol@example.org'] }]);
      expect(relay.received[0]?.data).toContain('Subject: relayed');
      expect((await stores.log.get(id))?.message.status).toBe('delivered');
    } finally {
      await relay.stop();
    }
  });

  it('a secret that is not {"username", "password"} stops the stage from starting', async () => {
    const bad = { ...options, config: parseConfig({ dataDir: '/nonexistent', delivery: { relayHost: '127.0.0.1:2525' } }) };
    await expect(deliverDeps(metrics, { ...bad, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'smarthost', OUTPOST_RELAY_CREDENTIALS_SECRET: TOKEN_SECRET } })).rejects.toThrow();
  });
});

describe('sesEventHandler', () => {
  it('suppresses the recipients of an SES complaint and logs it on the message', async () => {
    const handle = await sesEventHandler(metrics, options);
    const { id, sesId } = await sentThroughSes(['complainer@example.org']);
    await handle(sesEvent('Complaint', sesId, { complaint: { complainedRecipients: [{ emailAddress: 'complainer@example.org' }], complaintFeedbackType: 'abuse' } }));
    expect(await stores.suppression.find(tenant.id, 'complainer@example.org', Date.now())).toMatchObject({ reason: 'ses complaint (abuse)' });
    expect((await stores.log.get(id))?.events.map((event) => event.event)).toContain('complaint-received');
  });

  it('changes nothing for an event about an unknown SES message, or for recipients the message did not have', async () => {
    const handle = await sesEventHandler(metrics, options);
    await handle(sesEvent('Bounce', 'not-ours', hardBounce(['stranger@example.org'])));
    expect(await stores.suppression.find(tenant.id, 'stranger@example.org', Date.now())).toBeUndefined();
    const { sesId } = await sentThroughSes(['real@example.org']);
    await handle(sesEvent('Bounce', sesId, hardBounce(['victim@example.org'])));
    expect(await stores.suppression.find(tenant.id, 'victim@example.org', Date.now())).toBeUndefined();
    await handle(sesEvent('Delivery', sesId, { delivery: { recipients: ['real@example.org'] } }));
    expect(await stores.suppression.find(tenant.id, 'real@example.org', Date.now())).toBeUndefined();
  });

  it('counts SES hard bounces against the user up to an automatic lock, which the entry metrics count', async () => {
    const handle = await sesEventHandler(metrics, options);
    const { sesId } = await sentThroughSes(['gone1@example.org', 'gone2@example.org']);
    await handle(sesEvent('Bounce', sesId, hardBounce(['gone1@example.org', 'gone2@example.org'])));
    expect(await stores.suppression.find(tenant.id, 'gone2@example.org', Date.now())).toMatchObject({ source: 'bounce' });
    expect(locked).toEqual([{ userId, tenantId: tenant.id }]);
  });
});

describe('apiDeps', () => {
  it('hands the API SES identities in ses mode only', async () => {
    const ses = await apiDeps({ ...options, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'ses', OUTPOST_OPERATOR_TOKEN: 'op-token' } });
    expect(ses.emailIdentities).toBeDefined();
    expect(ses.operatorToken).toBe('op-token');
    const smtp = await apiDeps({ ...options, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'mx' } });
    expect(smtp.emailIdentities).toBeUndefined();
  });

  it('reads the operator token from the secret OUTPOST_OPERATOR_TOKEN_SECRET', async () => {
    const deps = await apiDeps({ ...options, env: { ...options.env, OUTPOST_DELIVERY_MODE: 'mx', OUTPOST_OPERATOR_TOKEN_SECRET: TOKEN_SECRET } });
    expect(deps.operatorToken).toBe('operator-token-from-secret');
  });
});
