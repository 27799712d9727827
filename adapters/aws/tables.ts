// The DynamoDB tables of the AWS deployment, declared once: the tests create them on DynamoDB
// Local with `createTables`, and the CDK app builds the same keys, TTL attribute and indexes
// from `TABLES`. Every table has a string partition key `pk` and sort key `sk`; items that expire
// carry `expiresAt` (epoch seconds), which DynamoDB's TTL deletes within days of passing, so
// readers never rely on TTL for correctness, only for space.
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
} from '@aws-sdk/client-dynamodb';

export interface IndexDefinition {
  name: string;
  partitionKey: string;
  sortKey: string;
}

export interface TableDefinition {
  /** What the table holds (for the data-model document and the CDK construct). */
  purpose: string;
  /** Attribute DynamoDB's TTL deletes by (epoch seconds), if items expire. */
  ttlAttribute?: string;
  indexes: IndexDefinition[];
}

export const TABLES = {
  counters: {
    purpose: 'Rate-limit windows, distinct-recipient windows and event counters (head item + one bucket item per second with uses, one item per distinct member), and hold index items',
    ttlAttribute: 'expiresAt',
    indexes: [],
  },
  messages: {
    purpose: 'Message log: one item per message (#MSG) and one per event (E#<at>#<seq>) in the partition M#<id>; searched through sharded indexes per tenant and across tenants',
    ttlAttribute: 'expiresAt',
    indexes: [
      { name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
      { name: 'byTime', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    ],
  },
  suppressions: {
    purpose: "Suppression lists: one item per (tenant, address), partition '<tenant>#<address>'; listed per tenant through a sparse index",
    ttlAttribute: 'expiresAt',
    indexes: [{ name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
  },
  locks: {
    purpose: 'Lock state of each outgoing user (#STATE, versioned) and its history (E#<at>#<seq>) in the partition U#<user>; locked users in a sparse index',
    indexes: [{ name: 'locked', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
  },
  config: {
    purpose: 'Tenants, domains, outgoing users, and the unique names they claim (tenant name, domain, login); listed per tenant (byParent) and per kind (byKind)',
    indexes: [
      { name: 'byParent', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
      { name: 'byKind', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    ],
  },
  quarantine: {
    purpose: 'Held messages (the message stays in S3): one item per message Q#<id>; listed newest first per tenant and across tenants (sharded), oldest first for retention',
    indexes: [
      { name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
      { name: 'byTime', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    ],
  },
  fingerprints: {
    purpose: 'Blocked attachment hashes (H#<sha256>), learned spam fingerprints and bulk sightings, each fingerprint under its 8 one-byte bands (SB#/BB#<band>#<value>) for near-duplicate lookups',
    indexes: [{ name: 'byKind', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' }],
  },
  audit: {
    purpose: 'Audit log: who changed what, one item per entry (LOG / E#<id>) numbered by a sequence item (SEQ); read newest first, per tenant through byTenant',
    indexes: [{ name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
  },
  holds: {
    purpose: 'Held mail of locked or held senders: per sender U#<user>, one item per held queue job (H#<id>, the job body verbatim) and the sender hold (#HOLD); listed oldest first per tenant (byTenant) and across tenants (byTime, sharded); found by job id (byId)',
    indexes: [
      { name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
      { name: 'byTime', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
      { name: 'byId', partitionKey: 'gsi3pk', sortKey: 'gsi3sk' },
    ],
  },
  logins: {
    purpose: 'Sources each login succeeded from (smart lockout of failed AUTH): one item per login and source, L#<login> / <source>, expiring by TTL',
    ttlAttribute: 'expiresAt',
    indexes: [],
  },
} satisfies Record<string, TableDefinition>;

export type TableName = keyof typeof TABLES;

export const TABLE_NAMES = Object.keys(TABLES) as TableName[];

/** The physical table names of one deployment: `<prefix>-<table>`. */
export function tableNames(prefix: string): Record<TableName, string> {
  return Object.fromEntries(TABLE_NAMES.map((table) => [table, `${prefix}-${table}`])) as Record<TableName, string>;
}

/**
 * Creates the tables (on-demand capacity) and turns TTL on. `ttl: false` leaves TTL off: tests
 * whose clock is set days in the past would otherwise see DynamoDB Local delete items that are
 * still live in the test's time.
 */
export async function createTables(client: DynamoDBClient, prefix: string, options: { ttl?: boolean; only?: TableName[] } = {}): Promise<Record<TableName, string>> {
  const names = tableNames(prefix);
  const wanted = options.only ?? TABLE_NAMES;
  for (const table of wanted) {
    const definition: TableDefinition = TABLES[table];
    const keyNames = new Set(['pk', 'sk', ...definition.indexes.flatMap((index) => [index.partitionKey, index.sortKey])]);
    const indexes: GlobalSecondaryIndex[] = definition.indexes.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    }));
    try {
      await client.send(
        new CreateTableCommand({
          TableName: names[table],
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [...keyNames].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          ...(indexes.length > 0 ? { GlobalSecondaryIndexes: indexes } : {}),
        }),
      );
    } catch (error: unknown) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    for (;;) {
      const described = await client.send(new DescribeTableCommand({ TableName: names[table] }));
      if (described.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (definition.ttlAttribute && options.ttl !== false) {
      await client.send(new UpdateTimeToLiveCommand({ TableName: names[table], TimeToLiveSpecification: { AttributeName: definition.ttlAttribute, Enabled: true } }));
    }
  }
  return names;
}
