// The DynamoDB stores pass the same contract suites as the SQLite ones, against one DynamoDB
// Local for this file; every test gets tables of its own.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbConfigStore } from '../../../adapters/aws/dynamodb-config-store.js';
import { DynamoDbLockStore } from '../../../adapters/aws/dynamodb-lock-store.js';
import { DynamoDbMessageLog } from '../../../adapters/aws/dynamodb-message-log.js';
import { DynamoDbSuppressionList } from '../../../adapters/aws/dynamodb-suppression-list.js';
import { createTables, type TableName } from '../../../adapters/aws/tables.js';
import { emulatorClientConfig, startDynamoDbLocal, type Emulator } from '../../helpers/aws-emulators.js';
import { configStoreContract } from '../../core/config-store.contract.js';
import { lockStoreContract } from '../../core/lock-store.contract.js';
import { messageLogContract } from '../../core/message-log.contract.js';
import { suppressionListContract } from '../../core/suppression-list.contract.js';

let dynamo: Emulator;
let client: DynamoDBClient;
let documents: DynamoDBDocumentClient;
let prefixes = 0;

beforeAll(async () => {
  dynamo = await startDynamoDbLocal();
  client = new DynamoDBClient(emulatorClientConfig(dynamo));
  documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

/** Fresh tables for one test (TTL off: the contracts' clocks are far from the real one). */
async function fresh(table: TableName): Promise<string> {
  const names = await createTables(client, `t${++prefixes}`, { ttl: false, only: [table] });
  return names[table];
}

messageLogContract('DynamoDB (DynamoDB Local)', async (clock) => ({
  log: new DynamoDbMessageLog({ client: documents, table: await fresh('messages'), clock }),
  close: () => undefined,
}));

suppressionListContract('DynamoDB (DynamoDB Local)', async (clock) => new DynamoDbSuppressionList({ client: documents, table: await fresh('suppressions'), clock }));

lockStoreContract('DynamoDB (DynamoDB Local)', async () => new DynamoDbLockStore({ client: documents, table: await fresh('locks') }));

configStoreContract('DynamoDB (DynamoDB Local)', async (clock) => new DynamoDbConfigStore({ client: documents, table: await fresh('config'), clock }));
