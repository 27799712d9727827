// On AWS an automatic lock is counted as the LocksApplied metric (EMF through Powertools, which
// the "lock spike" alarm sums): the shared UserLocks of an entry, on the DynamoDB stores (DynamoDB
// Local), with the entry's telemetry listening. The EMF lines are read from stdout, where Lambda
// and the ECS log driver pick them up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoDbDocumentClient } from '../../adapters/aws/clients.js';
import { DynamoDbConfigStore } from '../../adapters/aws/dynamodb-config-store.js';
import { DynamoDbCounterStore } from '../../adapters/aws/dynamodb-counter-store.js';
import { DynamoDbLockStore } from '../../adapters/aws/dynamodb-lock-store.js';
import { createTables } from '../../adapters/aws/tables.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parseConfig } from '../../core/config.js';
import type { UserLocks } from '../../core/locks.js';
import type { OutgoingUser } from '../../core/identity.js';
import { makeUserLocks } from '../../core/policy/index.js';
import { telemetry } from '../../lambdas/entry.js';
import { lockEventMetrics } from '../../lambdas/lock-metrics.js';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/metric-names.js';
import { emulatorClientConfig, startDynamoDbLocal, type Emulator } from '../helpers/aws-emulators.js';

let dynamo: Emulator;
let locks: UserLocks;
let user: OutgoingUser;
let tenantId: string;

beforeAll(async () => {
  dynamo = await startDynamoDbLocal();
  const clientConfig = emulatorClientConfig(dynamo);
  const tables = await createTables(new DynamoDBClient(clientConfig), 'lockmetrics', { ttl: false, only: ['config', 'counters', 'locks'] });
  const client = dynamoDbDocumentClient(clientConfig);
  const configStore = new DynamoDbConfigStore({ client, table: tables.config });
  const tenant = await configStore.createTenant('acme');
  tenantId = tenant.id;
  await configStore.addDomain(tenant.id, 'acme.example');
  user = await configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.example', domain: 'acme.example', passwordHash: null });
  const { entryMetrics } = telemetry('scan');
  locks = makeUserLocks({
    store: new DynamoDbLockStore({ client, table: tables.locks }),
    counters: new DynamoDbCounterStore({ client, table: tables.counters }),
    clock: { now: () => Date.now() },
    configStore,
    config: parseConfig({}),
    onLockEvent: lockEventMetrics(entryMetrics),
  });
}, 60_000);
afterAll(() => dynamo?.stop());

/** Runs `action` and returns the EMF documents it printed. */
async function emfDuring(action: () => Promise<unknown>): Promise<Array<Record<string, any>>> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    if (text.includes('"_aws"')) {
      lines.push(...text.split('\n').filter((line) => line.includes('"_aws"')));
      return true;
    }
    return write(chunk, ...(rest as []));
  }) as typeof process.stdout.write;
  try {
    await action();
  } finally {
    process.stdout.write = write;
  }
  return lines.map((line) => JSON.parse(line) as Record<string, any>);
}

const locksApplied = (documents: Array<Record<string, any>>) =>
  documents.filter((doc) => (doc._aws?.CloudWatchMetrics ?? []).some((set: { Metrics: Array<{ Name: string }> }) => set.Metrics.some((metric) => metric.Name === METRIC.locksApplied)));

describe('LocksApplied on AWS', () => {
  it('is published once per automatic lock, in namespace Outpost with the service dimension, tenant and user as metadata', async () => {
    const documents = await emfDuring(() => locks.lockAfterAbuse(user, [{ name: 'VIRUS_FOUND', evidence: { engine: 'clamd' } }]));
    const counted = locksApplied(documents);
    expect(counted).toHaveLength(1);
    const [doc] = counted;
    expect(doc?._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service']] });
    // The alarm reads Outpost / LocksApplied / service=scan (lib/constructs/monitoring.ts).
    expect(doc).toMatchObject({ service: 'scan', [METRIC.locksApplied]: 1, tenantId, userId: user.id });
    // Tenant and user are metadata, not dimensions: no metric per user.
    expect(JSON.stringify(doc?._aws.CloudWatchMetrics[0].Dimensions)).not.toMatch(/tenantId|userId/);
    expect((await locks.activeLock(user.id))?.locked).toBe(true);
  });

  it('is not published again for a user who is locked already, nor for an unlock', async () => {
    const again = await emfDuring(() => locks.lockAfterAbuse(user, [{ name: 'VIRUS_FOUND', evidence: {} }]));
    expect(locksApplied(again)).toEqual([]);
    const unlocked = await emfDuring(() => locks.unlock(user.id, 'operator', 'cleaned up'));
    expect(locksApplied(unlocked)).toEqual([]);
    const relocked = await emfDuring(() => locks.lockAfterAbuse(user, [{ name: 'VIRUS_FOUND', evidence: {} }]));
    expect(locksApplied(relocked)).toHaveLength(1);
  });
});
