// The DynamoDB stores pass the same contract suites as the SQLite ones, against one DynamoDB
// Local for this file (started once, for every suite here); every test gets tables of its own.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pemBase64Lines } from '../../helpers/pem.js';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import { kmsClient } from '../../../adapters/aws/clients.js';
import { KmsSecretBox } from '../../../adapters/aws/kms-secret-box.js';
import { secretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { addDkimKey } from '../../../core/dkim/keys.js';
import { asyncSecretBox } from '../../../core/ports/secret-box.js';
import { startKmsEmulator, type KmsEmulator } from '../../helpers/kms-emulator.js';
import { DynamoDbApiKeyStore } from '../../../adapters/aws/dynamodb-api-key-store.js';
import { DynamoDbAuditLog } from '../../../adapters/aws/dynamodb-audit-log.js';
import { DynamoDbBatvKeyStore } from '../../../adapters/aws/dynamodb-batv-key-store.js';
import { DynamoDbConfigStore } from '../../../adapters/aws/dynamodb-config-store.js';
import { DynamoDbDkimKeyStore } from '../../../adapters/aws/dynamodb-dkim-key-store.js';
import { DynamoDbFingerprintStore } from '../../../adapters/aws/dynamodb-fingerprint-store.js';
import { DynamoDbHoldStore } from '../../../adapters/aws/dynamodb-hold-store.js';
import { DynamoDbLockStore } from '../../../adapters/aws/dynamodb-lock-store.js';
import { DynamoDbLoginSourceStore } from '../../../adapters/aws/dynamodb-login-source-store.js';
import { DynamoDbMessageLog } from '../../../adapters/aws/dynamodb-message-log.js';
import { DynamoDbMessageStats } from '../../../adapters/aws/dynamodb-message-stats.js';
import { DynamoDbQuarantineStore } from '../../../adapters/aws/dynamodb-quarantine-store.js';
import { DynamoDbSuppressionList } from '../../../adapters/aws/dynamodb-suppression-list.js';
import { createTables, type TableName } from '../../../adapters/aws/tables.js';
import { emulatorClientConfig, startDynamoDbLocal, type Emulator } from '../../helpers/aws-emulators.js';
import { apiKeyStoreContract } from '../../core/api-key-store.contract.js';
import { auditLogContract } from '../../core/audit-log.contract.js';
import { batvKeyStoreContract } from '../../core/batv-key-store.contract.js';
import { configStoreContract } from '../../core/config-store.contract.js';
import { dkimKeyStoreContract } from '../../core/dkim-key-store.contract.js';
import { fingerprintStoreContract } from '../../core/fingerprint-store.contract.js';
import { holdStoreContract } from '../../core/holds.contract.js';
import { lockStoreContract } from '../../core/lock-store.contract.js';
import { loginSourceStoreContract } from '../../core/login-source-store.contract.js';
import { messageLogContract } from '../../core/message-log.contract.js';
import { messageStatsContract } from '../../core/message-stats.contract.js';
import { quarantineStoreContract } from '../../core/quarantine-store.contract.js';
import { suppressionListContract } from '../../core/suppression-list.contract.js';

let dynamo: Emulator;
let client: DynamoDBClient;
let documents: DynamoDBDocumentClient;
let prefixes = 0;
let kms: KmsEmulator;
let kmsApi: KMSClient;

beforeAll(async () => {
  kms = await startKmsEmulator();
  kmsApi = kmsClient(emulatorClientConfig(kms));
  dynamo = await startDynamoDbLocal();
  client = new DynamoDBClient(emulatorClientConfig(dynamo));
  documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
});

afterAll(async () => {
  client?.destroy();
  kmsApi?.destroy();
  await kms?.stop();
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

loginSourceStoreContract('DynamoDB (DynamoDB Local)', async () => new DynamoDbLoginSourceStore({ client: documents, table: await fresh('logins') }));

configStoreContract('DynamoDB (DynamoDB Local)', async (clock) => new DynamoDbConfigStore({ client: documents, table: await fresh('config'), clock }));

apiKeyStoreContract('DynamoDB (DynamoDB Local)', async () => new DynamoDbApiKeyStore({ client: documents, table: await fresh('config') }));

const keyFileBox = asyncSecretBox(secretBoxFromKey(Buffer.alloc(32, 7)));
dkimKeyStoreContract('DynamoDB (DynamoDB Local)', async (clock) => new DynamoDbDkimKeyStore({ client: documents, table: await fresh('config'), box: keyFileBox, clock }));
dkimKeyStoreContract('DynamoDB with KMS (DynamoDB Local, KMS emulator)', async (clock) =>
  new DynamoDbDkimKeyStore({ client: documents, table: await fresh('config'), box: new KmsSecretBox({ client: kmsApi, keyId: 'alias/outpost-test' }), clock }),
);
batvKeyStoreContract('DynamoDB with KMS (DynamoDB Local, KMS emulator)', async () =>
  new DynamoDbBatvKeyStore({ client: documents, table: await fresh('config'), box: new KmsSecretBox({ client: kmsApi, keyId: 'alias/outpost-test' }) }),
);

describe('DynamoDbDkimKeyStore', () => {
  it('keeps the private key sealed by KMS at rest', async () => {
    const table = await fresh('config');
    const store = new DynamoDbDkimKeyStore({ client: documents, table, box: new KmsSecretBox({ client: kmsApi, keyId: 'alias/outpost-test' }) });
    await addDkimKey(store, { domain: 'example.com', selector: 's1', now: Date.UTC(2026, 10, 25) });
    const item = (await documents.send(new GetCommand({ TableName: table, Key: { pk: 'DKIM#example.com', sk: 'K#s1' } }))).Item;
    expect(JSON.stringify(item)).not.toMatch(/PRIVATE KEY/);
    expect(String(item?.sealed)).toMatch(/^kms1:/);
    // Another box without the KMS key's data keys cached still opens it, through KMS.
    const other = new DynamoDbDkimKeyStore({ client: documents, table, box: new KmsSecretBox({ client: kmsApi, keyId: 'alias/outpost-test' }) });
    const privateKeyPem = (await other.signingKey('example.com'))?.privateKeyPem ?? '';
    expect(privateKeyPem).toMatch(/BEGIN PRIVATE KEY/);
    // Not one line of the key's base64 is in the item.
    const keyLines = pemBase64Lines(privateKeyPem);
    expect(keyLines.length).toBeGreaterThan(10);
    for (const line of keyLines) expect(JSON.stringify(item)).not.toContain(line);
  });
});

quarantineStoreContract('DynamoDB (DynamoDB Local)', async () => new DynamoDbQuarantineStore({ client: documents, table: await fresh('quarantine') }));

fingerprintStoreContract('DynamoDB (DynamoDB Local)', async () => new DynamoDbFingerprintStore({ client: documents, table: await fresh('fingerprints') }));

messageStatsContract('DynamoDB (DynamoDB Local)', async () => {
  const table = await fresh('messages');
  return { log: new DynamoDbMessageLog({ client: documents, table }), stats: new DynamoDbMessageStats({ client: documents, table }) };
});

auditLogContract('DynamoDB (DynamoDB Local)', async (clock) => new DynamoDbAuditLog({ client: documents, table: await fresh('audit'), clock }));

holdStoreContract('DynamoDB (DynamoDB Local)', async () => ({ store: new DynamoDbHoldStore({ client: documents, table: await fresh('holds') }), close: () => undefined }));

describe('DynamoDbConfigStore domain claims', () => {
  it('sweeps a claim written between reading the claims and serving the domain', async () => {
    const table = await fresh('config');
    const plain = new DynamoDbConfigStore({ client: documents, table });
    const acme = await plain.createTenant('acme');
    const globex = await plain.createTenant('globex');
    await plain.claimDomain(acme.id, 'late.test', 'a'.repeat(32));
    // A client that lets globex claim the name just before the verification's transaction goes out.
    const raw = new DynamoDBClient(emulatorClientConfig(dynamo));
    let armed = true;
    raw.middlewareStack.add(
      (next, context) => async (args) => {
        if (armed && context.commandName === 'TransactWriteItemsCommand') {
          armed = false;
          await plain.claimDomain(globex.id, 'late.test', 'b'.repeat(32));
        }
        return next(args);
      },
      { step: 'initialize', name: 'claimInBetween' },
    );
    const racing = new DynamoDbConfigStore({ client: DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } }), table });
    try {
      expect((await racing.verifyDomainClaim(acme.id, 'late.test')).tenantId).toBe(acme.id);
      expect(armed).toBe(false);
      expect(await plain.getDomainClaim(globex.id, 'late.test')).toBeUndefined();
    } finally {
      raw.destroy();
    }
  });
});
