// Suppression lists on DynamoDB. Each (tenant, address) is its own partition, so the lookup made
// at every RCPT is one GetItem spread over the whole table however busy the tenant; listing a
// tenant's entries goes through the sparse `byTenant` index (written only when an entry is
// added, which bounces and operators do rarely). Expired entries are ignored on read; the TTL
// attribute (the expiry) lets DynamoDB delete them, `purgeExpired` does it at once.
import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { normaliseSuppressedAddress, type SuppressionEntry, type SuppressionList, type SuppressionSource } from '../../core/suppression.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { deleteAll, num, queryAll, requireNum, requireStr, scanAll, str, ttlSeconds, type Item } from './dynamo-items.js';

const ENTRY = '#';
const entryPk = (tenantId: string, address: string): string => `${tenantId}#${address}`;

export interface DynamoDbSuppressionListOptions {
  client: DynamoDBDocumentClient;
  table: string;
  clock?: Clock;
}

function toEntry(item: Item): SuppressionEntry {
  const source = str(item, 'source');
  return {
    tenantId: requireStr(item, 'tenantId', 'suppression'),
    address: requireStr(item, 'address', 'suppression'),
    source: source === 'manual' ? 'manual' : 'bounce',
    reason: str(item, 'reason') ?? '',
    createdAt: requireNum(item, 'createdAt', 'suppression'),
    expiresAt: num(item, 'expiry') ?? null,
  };
}

const inForce = (entry: SuppressionEntry, now: number): boolean => entry.expiresAt === null || entry.expiresAt > now;

export class DynamoDbSuppressionList implements SuppressionList {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly clock: Clock;

  constructor(options: DynamoDbSuppressionListOptions) {
    this.client = options.client;
    this.table = options.table;
    this.clock = options.clock ?? systemClock;
  }

  async add(entry: { tenantId: string; address: string; source: SuppressionSource; reason: string; expiresAt?: number | null }): Promise<SuppressionEntry> {
    const stored: SuppressionEntry = {
      tenantId: entry.tenantId,
      address: normaliseSuppressedAddress(entry.address),
      source: entry.source,
      reason: entry.reason,
      createdAt: this.clock.now(),
      expiresAt: entry.expiresAt ?? null,
    };
    const pk = entryPk(stored.tenantId, stored.address);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk,
            sk: ENTRY,
            tenantId: stored.tenantId,
            address: stored.address,
            source: stored.source,
            reason: stored.reason,
            createdAt: stored.createdAt,
            ...(stored.expiresAt === null ? {} : { expiry: stored.expiresAt, expiresAt: ttlSeconds(stored.expiresAt) }),
            gsi1pk: `T#${stored.tenantId}`,
            gsi1sk: stored.address,
          },
          // A manual entry without expiry is an operator decision: an automatic bounce must not shorten it.
          ...(entry.source === 'bounce'
            ? { ConditionExpression: 'attribute_not_exists(pk) OR NOT (#source = :manual AND attribute_not_exists(expiry))', ExpressionAttributeNames: { '#source': 'source' }, ExpressionAttributeValues: { ':manual': 'manual' } }
            : {}),
        }),
      );
      return stored;
    } catch (error: unknown) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
      const existing = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk, sk: ENTRY }, ConsistentRead: true }));
      if (!existing.Item) throw error;
      return toEntry(existing.Item);
    }
  }

  async remove(tenantId: string, address: string): Promise<boolean> {
    const result = await this.client.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: entryPk(tenantId, normaliseSuppressedAddress(address)), sk: ENTRY }, ReturnValues: 'ALL_OLD' }),
    );
    return result.Attributes !== undefined;
  }

  async list(tenantId: string, now: number): Promise<SuppressionEntry[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      IndexName: 'byTenant',
      KeyConditionExpression: 'gsi1pk = :tenant',
      ExpressionAttributeValues: { ':tenant': `T#${tenantId}` },
    });
    return items
      .map(toEntry)
      .filter((entry) => inForce(entry, now))
      .sort((a, b) => b.createdAt - a.createdAt || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  async find(tenantId: string, address: string, now: number): Promise<SuppressionEntry | undefined> {
    let normalised: string;
    try {
      normalised = normaliseSuppressedAddress(address);
    } catch {
      return undefined; // not an address: other RCPT checks refuse it
    }
    const result = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: entryPk(tenantId, normalised), sk: ENTRY }, ConsistentRead: true }));
    const entry = result.Item ? toEntry(result.Item) : undefined;
    return entry && inForce(entry, now) ? entry : undefined;
  }

  async purgeExpired(now: number): Promise<number> {
    const expired = await scanAll(this.client, {
      TableName: this.table,
      FilterExpression: 'expiry <= :now',
      ExpressionAttributeValues: { ':now': now },
      ProjectionExpression: 'pk, sk',
    });
    await deleteAll(this.client, this.table, expired.map((item) => ({ pk: requireStr(item, 'pk', 'suppression'), sk: requireStr(item, 'sk', 'suppression') })));
    return expired.length;
  }
}
