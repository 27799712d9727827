// The deployment's BATV keys on DynamoDB (table `config`, partition `BATV`): one item per key
// index (`K#<0-9>`, the secret sealed by the AsyncSecretBox) and a versioned `#HEAD`. A rotation
// retires the current key, writes the new one and bumps the head in one transaction, so two
// rotations (or two first uses) at once cannot both make a current key: the loser reads again
// and takes the winner's.
import { randomBytes } from 'node:crypto';
import { TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { defaultBatvPolicy, nextBatvKeyIndex, type BatvKey, type BatvKeyStore, type BatvPolicy } from '../../core/batv.js';
import type { AsyncSecretBox } from '../../core/ports/secret-box.js';
import { backoff, isContention, num, queryAll, requireNum, requireStr, str } from './dynamo-items.js';

const PK = 'BATV';
const HEAD = '#HEAD';
const DAY_MS = 86_400_000;
const MAX_ATTEMPTS = 20;

export interface DynamoDbBatvKeyStoreOptions {
  client: DynamoDBDocumentClient;
  table: string;
  box: AsyncSecretBox;
  policy?: BatvPolicy;
}

export class DynamoDbBatvKeyStore implements BatvKeyStore {
  private readonly policy: BatvPolicy;

  constructor(private readonly options: DynamoDbBatvKeyStoreOptions) {
    this.policy = options.policy ?? defaultBatvPolicy;
  }

  private async read(): Promise<{ version: number | undefined; keys: BatvKey[] }> {
    const items = await queryAll(this.options.client, { TableName: this.options.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': PK }, ConsistentRead: true });
    const keys = await Promise.all(
      items
        .filter((item) => str(item, 'sk')?.startsWith('K#'))
        .map(async (item): Promise<BatvKey> => ({
          index: requireNum(item, 'index', 'BATV key'),
          secret: await this.options.box.open(requireStr(item, 'sealed', 'BATV key')),
          createdAt: requireNum(item, 'createdAt', 'BATV key'),
          retiredAt: num(item, 'retiredAt') ?? null,
        })),
    );
    return { version: num(items.find((item) => str(item, 'sk') === HEAD), 'version'), keys: keys.sort((a, b) => b.createdAt - a.createdAt) };
  }

  async keys(now: number): Promise<BatvKey[]> {
    const cutoff = now - this.policy.graceDays * DAY_MS;
    return (await this.read()).keys.filter((key) => key.retiredAt === null || key.retiredAt >= cutoff);
  }

  async current(now: number): Promise<BatvKey> {
    const current = (await this.read()).keys.find((key) => key.retiredAt === null);
    return current ?? this.rotate(now, true);
  }

  async rotate(now: number, onlyIfNone = false): Promise<BatvKey> {
    for (let attempt = 0; ; attempt++) {
      const { version, keys } = await this.read();
      const current = keys.find((key) => key.retiredAt === null);
      if (onlyIfNone && current) return current;
      const index = nextBatvKeyIndex(keys, now, this.policy);
      const secret = randomBytes(32);
      const sealed = await this.options.box.seal(secret);
      try {
        await this.options.client.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.options.table,
                  Item: { pk: PK, sk: HEAD, version: (version ?? 0) + 1 },
                  ConditionExpression: version === undefined ? 'attribute_not_exists(pk)' : 'version = :version',
                  ...(version === undefined ? {} : { ExpressionAttributeValues: { ':version': version } }),
                },
              },
              // The index may have belonged to a key past its grace period: that key is gone for good.
              { Put: { TableName: this.options.table, Item: { pk: PK, sk: `K#${index}`, index, sealed, createdAt: now } } },
              ...keys
                .filter((key) => key.retiredAt === null && key.index !== index)
                .map((key) => ({
                  Update: { TableName: this.options.table, Key: { pk: PK, sk: `K#${key.index}` }, UpdateExpression: 'SET retiredAt = :now', ExpressionAttributeValues: { ':now': now } },
                })),
            ],
          }),
        );
        return { index, secret, createdAt: now, retiredAt: null };
      } catch (error: unknown) {
        if (!isContention(error) || attempt >= MAX_ATTEMPTS) throw error;
        // Someone else rotated (or made the first key) meanwhile: theirs is the current key now.
        onlyIfNone = true;
        await backoff(attempt);
      }
    }
  }
}
