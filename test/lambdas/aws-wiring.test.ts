// The deps factories of lambdas/aws-stores.ts beyond the happy path of test/e2e/aws-flow.test.ts,
// on the emulators (DynamoDB Local, s3rver, local-aws-sqs, the KMS emulator): the delivery mode
// and relay host must agree; SES complaints suppress; SES events about messages Outpost does not
// know, or naming recipients the message did not have, change nothing; hard bounces learnt from
// SES count against the user up to an automatic lock, which the entry's metrics see; the API gets
// SES identities in `ses` mode only.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../adapters/aws/clients.js';
import { createQueueWithDeadLetter } from '../../adapters/aws/sqs-queue.js';
import { createTables } from '../../adapters/aws/tables.js';
import { parseConfig } from '../../core/config.js';
import type { Tenant } from '../../core/identity.js';
import type { Stores } from '../../core/ports/stores.js';
import { apiDeps, deliverDeps, deliveryMode, openAwsStores, sesEventHandler, type AwsDepsOptions, type EntryMetrics, type SesEvent } from '../../lambdas/aws-stores.js';
import { emulatorClientConfig, startDynamoDbLocal, startLocalSqs, startS3rver, type Emulator } from '../helpers/aws-emulators.js';
import { startKmsEmulator, type KmsEmulator } from '../helpers/kms-emulator.js';

let dynamo: Emulator;
let s3: Emulator;
let sqs: Emulator;
let kms: KmsEmulator;
let stores: Stores;
let options: AwsDepsOptions;
let tenant: Tenant;
let userId: string;
const locked: Array<{ userId: string; tenantId: string }> = [];
const metrics: EntryMetrics = { inc: () => undefined, observe: () => undefined, locked: (user, tenantId) => locked.push({ userId: user, tenantId }) };

beforeAll(async () => {
  [dynamo, s3, sqs, kms] = await Promise.all([startDynamoDbLocal(), startS3rver(['outpost-wiring-messages']), startLocalSqs(), startKmsEmulator()]);
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
    clients: { dynamodb: emulatorClientConfig(dynamo), s3: emulatorClientConfig(s3), sqs: emulatorClientConfig(sqs), kms: emulatorClientConfig(kms), ses: { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } } },
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
  await Promise.all([dynamo?.stop(), s3?.stop(), sqs?.stop(), kms?.stop()]);
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
});
