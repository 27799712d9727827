// Held messages on DynamoDB (table `quarantine`); the message itself stays in the blob store.
// One item per message (`Q#<id>`), added on the condition that it is not there yet (a retried
// scan keeps one entry). Lists read the `byTenant` index (one tenant, newest first) or `byTime`
// (every tenant, split over QUARANTINE_SHARDS partitions by a hash of the message id, merged),
// which also serves the retention sweep oldest first. No TTL: an entry must leave together with
// its blob, which `purgeQuarantine` deletes.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { envelopeSchema } from '../../core/envelope.js';
import type { QuarantineEntry, QuarantineStore } from '../../core/scan/quarantine.js';
import { queryAll, requireNum, requireStr, str, type Item } from './dynamo-items.js';

export const QUARANTINE_SHARDS = 4;
const ONE = '#';
const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const entryPk = (id: string): string => `Q#${id}`;
const shardOf = (id: string): number => createHash('sha1').update(id).digest().readUInt32BE(0) % QUARANTINE_SHARDS;

const kindSchema = z.enum(['clean', 'spam', 'virus', 'blocked', 'malformed', 'deferred']);
const symbolsSchema = z.array(z.object({ name: z.string(), score: z.number().optional(), evidence: z.union([z.string(), z.record(z.string(), z.unknown())]).optional() }));

function toEntry(item: Item): QuarantineEntry {
  const symbols = symbolsSchema.parse(JSON.parse(str(item, 'symbols') ?? '[]')).map((parsed) => {
    const symbol: QuarantineEntry['symbols'][number] = { name: parsed.name };
    if (parsed.score !== undefined) symbol.score = parsed.score;
    if (parsed.evidence !== undefined) symbol.evidence = parsed.evidence;
    return symbol;
  });
  return {
    messageId: requireStr(item, 'messageId', 'quarantine entry'),
    tenantId: requireStr(item, 'tenantId', 'quarantine entry'),
    userId: requireStr(item, 'userId', 'quarantine entry'),
    envelope: envelopeSchema.parse(JSON.parse(str(item, 'envelope') ?? 'null')),
    kind: kindSchema.parse(str(item, 'kind')),
    symbols,
    subject: str(item, 'subject') ?? null,
    blobKey: requireStr(item, 'blobKey', 'quarantine entry'),
    quarantinedAt: requireNum(item, 'quarantinedAt', 'quarantine entry'),
  };
}

export class DynamoDbQuarantineStore implements QuarantineStore {
  constructor(private readonly options: { client: DynamoDBDocumentClient; table: string }) {}

  async add(entry: QuarantineEntry): Promise<void> {
    const sk = `${pad(entry.quarantinedAt)}#${entry.messageId}`;
    try {
      await this.options.client.send(
        new PutCommand({
          TableName: this.options.table,
          Item: {
            pk: entryPk(entry.messageId),
            sk: ONE,
            ...entry,
            envelope: JSON.stringify(entry.envelope),
            symbols: JSON.stringify(entry.symbols),
            gsi1pk: `T#${entry.tenantId}`,
            gsi1sk: sk,
            gsi2pk: `Q#${shardOf(entry.messageId)}`,
            gsi2sk: sk,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error: unknown) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    }
  }

  async get(messageId: string): Promise<QuarantineEntry | undefined> {
    const result = await this.options.client.send(new GetCommand({ TableName: this.options.table, Key: { pk: entryPk(messageId), sk: ONE }, ConsistentRead: true }));
    return result.Item ? toEntry(result.Item) : undefined;
  }

  async list(filter: { tenantId?: string; limit?: number; before?: number }): Promise<QuarantineEntry[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
    const upper = filter.before === undefined ? '~' : pad(filter.before);
    return this.read(filter.tenantId, '0', upper, false, limit);
  }

  async remove(messageId: string): Promise<void> {
    await this.options.client.send(new DeleteCommand({ TableName: this.options.table, Key: { pk: entryPk(messageId), sk: ONE } }));
  }

  async olderThan(cutoff: number, limit: number): Promise<QuarantineEntry[]> {
    return this.read(undefined, '0', pad(cutoff), true, limit);
  }

  /** Entries whose sort key is in [lower, upper), from one tenant or every shard, merged in order. */
  private async read(tenantId: string | undefined, lower: string, upper: string, ascending: boolean, limit: number): Promise<QuarantineEntry[]> {
    const partitions = tenantId === undefined ? Array.from({ length: QUARANTINE_SHARDS }, (_, shard) => ({ index: 'byTime', pk: 'gsi2pk', sk: 'gsi2sk', value: `Q#${shard}` })) : [{ index: 'byTenant', pk: 'gsi1pk', sk: 'gsi1sk', value: `T#${tenantId}` }];
    const pages = await Promise.all(
      partitions.map((partition) =>
        queryAll(
          this.options.client,
          {
            TableName: this.options.table,
            IndexName: partition.index,
            KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :lower AND :upper',
            ExpressionAttributeNames: { '#pk': partition.pk, '#sk': partition.sk },
            ExpressionAttributeValues: { ':pk': partition.value, ':lower': lower, ':upper': upper },
            ScanIndexForward: ascending,
          },
          limit + 1,
        ).then((items) => items.map((item) => ({ sk: str(item, partition.sk) ?? '', item }))),
      ),
    );
    return pages
      .flat()
      // BETWEEN includes its bounds; `before` and `cutoff` are exclusive.
      .filter((entry) => entry.sk < upper)
      .sort((a, b) => (ascending ? 1 : -1) * (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0))
      .slice(0, limit)
      .map((entry) => toEntry(entry.item));
  }
}
