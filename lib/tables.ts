// The DynamoDB tables of the AWS deployment as the CDK app builds them. The keys, TTL attribute
// and indexes mirror the table declarations of the DynamoDB adapters (adapters/aws/tables.ts,
// `TABLES`): when both live in one tree, import `TABLES` from there and delete this copy, so that
// the tables the adapters are tested against and the tables deployed cannot drift apart.

export interface IndexDefinition {
  name: string;
  partitionKey: string;
  sortKey: string;
}

export interface TableDefinition {
  /** What the table holds. */
  purpose: string;
  /** Attribute DynamoDB's TTL deletes by (epoch seconds), if items expire. */
  ttlAttribute?: string;
  indexes: IndexDefinition[];
}

/** Every table has a string partition key `pk` and sort key `sk`. */
export const TABLES = {
  counters: {
    purpose: 'Rate-limit windows, distinct-recipient windows and event counters (head item + one item per use), and hold index items',
    ttlAttribute: 'expiresAt',
    indexes: [],
  },
  messages: {
    purpose: 'Message log: one item per message and one per event; searched through sharded indexes per tenant and across tenants',
    ttlAttribute: 'expiresAt',
    indexes: [
      { name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
      { name: 'byTime', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    ],
  },
  suppressions: {
    purpose: 'Suppression lists: one item per (tenant, address); listed per tenant through a sparse index',
    ttlAttribute: 'expiresAt',
    indexes: [{ name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
  },
  locks: {
    purpose: 'Lock state of each outgoing user and its history; locked users in a sparse index',
    indexes: [{ name: 'locked', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' }],
  },
  config: {
    purpose: 'Tenants, domains, outgoing users and the unique names they claim; listed per tenant and per kind',
    indexes: [
      { name: 'byParent', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
      { name: 'byKind', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
    ],
  },
} satisfies Record<string, TableDefinition>;

export type TableName = keyof typeof TABLES;
