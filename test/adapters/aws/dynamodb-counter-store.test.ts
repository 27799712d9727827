// The DynamoDB counter store passes the same contract as the SQLite one, against DynamoDB Local
// (transactions and conditions as on DynamoDB), including 50 parallel reservations at a limit of 17.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbCounterStore } from '../../../adapters/aws/dynamodb-counter-store.js';
import { createTables } from '../../../adapters/aws/tables.js';
import { emulatorClientConfig, startDynamoDbLocal, type Emulator } from '../../helpers/aws-emulators.js';
import { counterStoreContract, manualClock } from '../../core/counters.contract.js';

let dynamo: Emulator;
let client: DynamoDBClient;
let documents: DynamoDBDocumentClient;
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynamoDbLocal();
  client = new DynamoDBClient(emulatorClientConfig(dynamo));
  documents = DynamoDBDocumentClient.from(client);
});

afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

/** A fresh table per test: the contract's tests reuse key names. */
async function freshTable(): Promise<string> {
  tables += 1;
  // TTL stays off: the contract's clock is days behind the real one.
  const names = await createTables(client, `counters${tables}`, { ttl: false, only: ['counters'] });
  return names.counters;
}

counterStoreContract('DynamoDB (DynamoDB Local)', async (clock) => ({
  store: new DynamoDbCounterStore({ client: documents, table: await freshTable(), clock }),
  close: () => undefined,
}));

describe('DynamoDbCounterStore beyond the contract', () => {
  it('keeps counting exactly when a head is past its window with stale entries left behind (TTL order does not matter)', async () => {
    const clock = manualClock();
    const store = new DynamoDbCounterStore({ client: documents, table: await freshTable(), clock });
    const limit = { key: 'k', units: 1, limit: 2, windowMs: 60_000 };
    expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
    expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
    clock.advance(10 * 60_000);
    // Both entries are out of the window; the head counts nothing any more.
    expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
    expect((await store.reserve({ limits: [limit] })).ok).toBe(true);
    expect((await store.reserve({ limits: [limit] })).ok).toBe(false);
    expect(await store.total('k', 60_000)).toBe(2);
  });

  it('releasing a held sighting of a known member keeps the member counted from its earlier sighting', async () => {
    const clock = manualClock();
    const store = new DynamoDbCounterStore({ client: documents, table: await freshTable(), clock });
    const day = 24 * 60 * 60_000;
    const distinct = (member: string) => [{ key: 'd', members: [member], limit: 2, windowMs: day }];
    await store.reserve({ limits: [], distinct: distinct('a@x.org') });
    clock.advance(60_000);
    await store.reserve({ limits: [], distinct: distinct('a@x.org'), hold: { transaction: 's', item: 'a@x.org' } });
    await store.settle('s', []);
    expect(await store.countDistinct('d', day)).toBe(1);
    // a still leaves the window one day after its first sighting.
    clock.set(manualClock().now() + day);
    expect(await store.countDistinct('d', day)).toBe(0);
  });

  it('settles a transaction that holds more entries than one DynamoDB transaction takes', async () => {
    const store = new DynamoDbCounterStore({ client: documents, table: await freshTable(), clock: manualClock() });
    const rate = { key: 'rate', units: 1, limit: 1000, windowMs: 3_600_000 };
    for (let i = 0; i < 40; i++) {
      await store.reserve({ limits: [rate], distinct: [{ key: 'rcpt', members: [`r${i}@x.org`], limit: 1000, windowMs: 86_400_000 }], hold: { transaction: 'big', item: `r${i}@x.org` } });
    }
    await store.settle('big', ['r0@x.org', 'r1@x.org']);
    expect(await store.total('rate', 3_600_000)).toBe(2);
    expect(await store.countDistinct('rcpt', 86_400_000)).toBe(2);
  });
});
