// Small helpers shared by the DynamoDB stores: reading typed attributes out of items (items come
// from the network, so every attribute is checked, never cast), paging through a Query or Scan,
// batching writes and reads within DynamoDB's limits, and recognising write contention.
import {
  BatchGetCommand,
  BatchWriteCommand,
  QueryCommand,
  ScanCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
  type ScanCommandInput,
} from '@aws-sdk/lib-dynamodb';

export type Item = Record<string, unknown>;

export function str(item: Item | undefined, name: string): string | undefined {
  const value = item?.[name];
  return typeof value === 'string' ? value : undefined;
}

export function num(item: Item | undefined, name: string): number | undefined {
  const value = item?.[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function bool(item: Item | undefined, name: string): boolean | undefined {
  const value = item?.[name];
  return typeof value === 'boolean' ? value : undefined;
}

export function strings(item: Item | undefined, name: string): string[] | undefined {
  const value = item?.[name];
  if (value instanceof Set) return [...value].filter((entry): entry is string => typeof entry === 'string');
  if (Array.isArray(value)) return value.filter((entry): entry is string => typeof entry === 'string');
  return undefined;
}

/** A required string attribute; a missing one means the item is not what this store wrote. */
export function requireStr(item: Item, name: string, what: string): string {
  const value = str(item, name);
  if (value === undefined) throw new Error(`${what}: attribute ${name} missing or not a string`);
  return value;
}

export function requireNum(item: Item, name: string, what: string): number {
  const value = num(item, name);
  if (value === undefined) throw new Error(`${what}: attribute ${name} missing or not a number`);
  return value;
}

/** Every item of a Query, following LastEvaluatedKey (up to `limit` items when given). */
export async function queryAll(client: DynamoDBDocumentClient, input: QueryCommandInput, limit = Infinity): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start && items.length < limit);
  return items.slice(0, limit);
}

export async function scanAll(client: DynamoDBDocumentClient, input: ScanCommandInput): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(new ScanCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Deletes keys in batches of 25, retrying what DynamoDB left unprocessed. */
export async function deleteAll(client: DynamoDBDocumentClient, table: string, keys: Array<{ pk: string; sk: string }>): Promise<void> {
  for (let i = 0; i < keys.length; i += 25) {
    let requests: Array<{ DeleteRequest: { Key: Record<string, unknown> } }> = keys.slice(i, i + 25).map((key) => ({ DeleteRequest: { Key: { pk: key.pk, sk: key.sk } } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      const result = await client.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
      const left = result.UnprocessedItems?.[table] ?? [];
      requests = left.flatMap((request) => (request.DeleteRequest?.Key ? [{ DeleteRequest: { Key: request.DeleteRequest.Key } }] : []));
      if (requests.length > 0) await backoff(attempt);
    }
  }
}

/** Strongly consistent reads of many keys, 100 at a time; the result is keyed by `pk\u0000sk`. */
export async function getMany(client: DynamoDBDocumentClient, table: string, keys: Array<{ pk: string; sk: string }>): Promise<Map<string, Item>> {
  const found = new Map<string, Item>();
  const unique = [...new Map(keys.map((key) => [itemKey(key.pk, key.sk), key])).values()];
  for (let i = 0; i < unique.length; i += 100) {
    let pending: Array<Record<string, unknown>> = unique.slice(i, i + 100).map((key) => ({ pk: key.pk, sk: key.sk }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      const result = await client.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }));
      for (const item of result.Responses?.[table] ?? []) {
        const pk = str(item, 'pk');
        const sk = str(item, 'sk');
        if (pk !== undefined && sk !== undefined) found.set(itemKey(pk, sk), item);
      }
      pending = result.UnprocessedKeys?.[table]?.Keys ?? [];
      if (pending.length > 0) await backoff(attempt);
    }
  }
  return found;
}

export function itemKey(pk: string, sk: string): string {
  return `${pk}\u0000${sk}`;
}

/**
 * Whether a write lost a race: a failed condition, a cancelled transaction, or a transaction
 * conflict. DynamoDB Local reports contention as ConditionalCheckFailed inside a cancelled
 * transaction, DynamoDB also as TransactionConflict: both are retried.
 */
export function isContention(error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  return name === 'TransactionCanceledException' || name === 'ConditionalCheckFailedException' || name === 'TransactionConflictException';
}

/** Full jitter, growing with the attempt, capped at about 200 ms. */
export function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(200, 5 * 2 ** Math.min(attempt, 6));
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
}

/** Epoch seconds for the TTL attribute. */
export function ttlSeconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
