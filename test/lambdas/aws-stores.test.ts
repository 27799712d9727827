// The AWS deployment's store bundle, built by lambdas/aws-stores.ts from the environment the CDK
// app sets, against the emulators (DynamoDB Local, s3rver, local-aws-sqs, the KMS emulator):
// one write and one read through each kind of adapter, and housekeeping on the bundle.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsClient } from '../../adapters/aws/clients.js';
import { createQueueWithDeadLetter } from '../../adapters/aws/sqs-queue.js';
import { createTables } from '../../adapters/aws/tables.js';
import { generateDkimKeyPair } from '../../core/dkim/keys.js';
import { purgeExpired } from '../../core/housekeeping.js';
import { parseConfig } from '../../core/config.js';
import type { Stores } from '../../core/ports/stores.js';
import { openAwsStores } from '../../lambdas/aws-stores.js';
import { emulatorClientConfig, startDynamoDbLocal, startLocalSqs, startS3rver, type Emulator } from '../helpers/aws-emulators.js';
import { startKmsEmulator, type KmsEmulator } from '../helpers/kms-emulator.js';

let dynamo: Emulator;
let s3: Emulator;
let sqs: Emulator;
let kms: KmsEmulator;
let stores: Stores;

beforeAll(async () => {
  [dynamo, s3, sqs, kms] = await Promise.all([startDynamoDbLocal(), startS3rver(['outpost-test-messages']), startLocalSqs(), startKmsEmulator()]);
  const admin = new DynamoDBClient(emulatorClientConfig(dynamo));
  await createTables(admin, 'outpost-test', { ttl: false });
  admin.destroy();
  const queues = sqsClient(emulatorClientConfig(sqs));
  const [scan, deliver, bounce] = await Promise.all(['scan', 'deliver', 'bounce'].map((name) => createQueueWithDeadLetter(queues, `outpost-test-${name}`, { maxReceives: 2 })));
  queues.destroy();
  stores = openAwsStores({
    env: {
      AWS_REGION: 'us-east-1',
      OUTPOST_TABLE_PREFIX: 'outpost-test',
      OUTPOST_BUCKET: 'outpost-test-messages',
      OUTPOST_KMS_KEY_ID: kms.keyArn,
      OUTPOST_SCAN_QUEUE_URL: scan,
      OUTPOST_DELIVER_QUEUE_URL: deliver,
      OUTPOST_BOUNCE_QUEUE_URL: bounce,
    },
    clients: { dynamodb: emulatorClientConfig(dynamo), s3: emulatorClientConfig(s3), sqs: emulatorClientConfig(sqs), kms: emulatorClientConfig(kms) },
  });
}, 60_000);

afterAll(async () => {
  stores?.close();
  await Promise.all([dynamo?.stop(), s3?.stop(), sqs?.stop(), kms?.stop()]);
});

describe('openAwsStores', () => {
  it('refuses to start without the names the CDK app passes', () => {
    expect(() => openAwsStores({ env: { AWS_REGION: 'us-east-1' } })).toThrow(/OUTPOST_TABLE_PREFIX is not set/);
    expect(() => openAwsStores({ env: { OUTPOST_TABLE_PREFIX: 'p', OUTPOST_KMS_KEY_ID: 'k' } })).toThrow(/AWS_REGION is not set/);
  });

  it('writes and reads through DynamoDB (config, message log), S3, SQS and KMS-sealed DKIM keys', async () => {
    const tenant = await stores.configStore.createTenant('acme');
    await stores.configStore.createUser({ tenantId: tenant.id, kind: 'ip', identity: '198.51.100.0/24', domain: null, passwordHash: null });
    expect((await stores.configStore.getTenantByName('acme'))?.id).toBe(tenant.id);
    expect((await stores.configStore.findIpUser('198.51.100.20'))?.tenantId).toBe(tenant.id);

    await stores.log.create({ id: 'MAWS1', tenantId: tenant.id, userId: 'u1', identity: 'a@acme.test', mailFrom: 'a@acme.test', rcptTo: ['b@example.org'], size: 5, subject: null, status: 'queued', receivedAt: Date.now() });
    await stores.log.addEvent('MAWS1', 'delivered', {}, 'delivered');
    await stores.log.recordProviderIds('MAWS1', ['ses-1']);
    expect(await stores.log.findByProviderId('ses-1')).toBe('MAWS1');
    expect((await stores.log.eventCounts()).delivered).toBe(1);

    await stores.blobs.put('messages/MAWS1.eml', Buffer.from('Subject: hi\r\n\r\nhello\r\n'));
    expect((await stores.blobs.get('messages/MAWS1.eml')).toString()).toBe('Subject: hi\r\n\r\nhello\r\n');

    await stores.queue.send('scan', JSON.stringify({ messageId: 'MAWS1' }));
    const [received] = await stores.queue.receive('scan', { max: 1, visibilityTimeoutSeconds: 30 });
    expect(received?.body).toBe('{"messageId":"MAWS1"}');

    const pair = await generateDkimKeyPair('ed25519');
    await stores.dkimKeys.insert({ domain: 'acme.test', selector: 's1', algorithm: 'ed25519', ...pair, makeDefault: true });
    expect((await stores.dkimKeys.signingKey('acme.test'))?.privateKeyPem).toBe(pair.privateKeyPem);
    expect(kms.calls.GenerateDataKey ?? 0).toBeGreaterThan(0);
  });

  it('finds a dead-letter queue through its queue and redrives it', async () => {
    await stores.queue.send('bounce', 'poison');
    for (let i = 0; i < 3; i++) {
      for (const message of await stores.queue.receive('bounce', { max: 1, visibilityTimeoutSeconds: 0 })) void message;
    }
    const dead = await stores.queue.depth('bounce-dlq');
    expect(dead.visible + dead.inFlight).toBe(1);
    expect(await stores.queue.redrive('bounce')).toBe(1);
    const [back] = await stores.queue.receive('bounce', { max: 1, visibilityTimeoutSeconds: 30 });
    expect(back?.body).toBe('poison');
  });

  it('runs housekeeping on the bundle', async () => {
    const config = parseConfig({ dataDir: '/nonexistent' });
    const removed = await purgeExpired(stores, config, stores.clock);
    expect(removed).toEqual({ counters: 0, loginSources: 0, suppressions: 0, messages: 0, refusalStatistics: 0 });
  });
});
