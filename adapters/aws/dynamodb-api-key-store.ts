// Tenant API keys on DynamoDB (table `config`): one partition per key (`APIKEY#<id>`, looked up
// by id on every API request), listed per tenant through `byParent`. Only the SHA-256 of the
// secret is stored.
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ApiKey, ApiKeyStore } from '../../core/api/api-keys.js';
import { num, queryAll, requireNum, requireStr, type Item } from './dynamo-items.js';

const ONE = '#';
const keyPk = (id: string): string => `APIKEY#${id}`;
const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');

const toKey = (item: Item): ApiKey => ({
  id: requireStr(item, 'id', 'api key'),
  tenantId: requireStr(item, 'tenantId', 'api key'),
  name: requireStr(item, 'name', 'api key'),
  createdAt: requireNum(item, 'createdAt', 'api key'),
  lastUsedAt: num(item, 'lastUsedAt') ?? null,
});

export class DynamoDbApiKeyStore implements ApiKeyStore {
  constructor(private readonly options: { client: DynamoDBDocumentClient; table: string }) {}

  async insert(key: ApiKey & { secretHash: string }): Promise<void> {
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.table,
        Item: { pk: keyPk(key.id), sk: ONE, ...key, gsi1pk: `APIKEYS#${key.tenantId}`, gsi1sk: `${pad(key.createdAt)}#${key.id}` },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async find(id: string): Promise<(ApiKey & { secretHash: string }) | undefined> {
    const result = await this.options.client.send(new GetCommand({ TableName: this.options.table, Key: { pk: keyPk(id), sk: ONE }, ConsistentRead: true }));
    return result.Item ? { ...toKey(result.Item), secretHash: requireStr(result.Item, 'secretHash', 'api key') } : undefined;
  }

  async list(tenantId: string): Promise<ApiKey[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.table,
      IndexName: 'byParent',
      KeyConditionExpression: 'gsi1pk = :tenant',
      ExpressionAttributeValues: { ':tenant': `APIKEYS#${tenantId}` },
    });
    return items.map(toKey);
  }

  async revoke(tenantId: string, id: string): Promise<boolean> {
    try {
      await this.options.client.send(
        new DeleteCommand({ TableName: this.options.table, Key: { pk: keyPk(id), sk: ONE }, ConditionExpression: 'tenantId = :tenant', ExpressionAttributeValues: { ':tenant': tenantId } }),
      );
      return true;
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async revokeAll(tenantId: string): Promise<void> {
    for (const key of await this.list(tenantId)) await this.revoke(tenantId, key.id);
  }

  async touch(id: string, at: number): Promise<void> {
    try {
      await this.options.client.send(
        new UpdateCommand({ TableName: this.options.table, Key: { pk: keyPk(id), sk: ONE }, UpdateExpression: 'SET lastUsedAt = :at', ConditionExpression: 'attribute_exists(pk)', ExpressionAttributeValues: { ':at': at } }),
      );
    } catch (error: unknown) {
      // Revoked meanwhile: nothing to note.
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
    }
  }
}
