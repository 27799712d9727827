// LoginSourceStore on DynamoDB (table `logins`): one item per login and source, `L#<login>` /
// `<source>`, read with one strongly consistent GetItem on every AUTH. The item carries its
// expiry in milliseconds (`expiresAtMs`, what reads compare) and in epoch seconds (`expiresAt`,
// for DynamoDB's TTL, which deletes it within days of passing: reads never rely on that).
// Renewing never shortens an expiry: the longer one is kept by a conditional update.
import { DeleteCommand, GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LoginSourceStore } from '../../core/ports/login-sources.js';
import { num, scanAll, str, ttlSeconds } from './dynamo-items.js';

const loginPk = (login: string): string => `L#${login}`;

export class DynamoDbLoginSourceStore implements LoginSourceStore {
  constructor(private readonly options: { client: DynamoDBDocumentClient; table: string }) {}

  async remember(login: string, source: string, at: number, keepMs: number): Promise<void> {
    const expiresAtMs = at + keepMs;
    const key = { pk: loginPk(login), sk: source };
    try {
      await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.table,
          Key: key,
          UpdateExpression: 'SET lastSuccess = :at, expiresAtMs = :expires, expiresAt = :ttl',
          ConditionExpression: 'attribute_not_exists(expiresAtMs) OR expiresAtMs < :expires',
          ExpressionAttributeValues: { ':at': at, ':expires': expiresAtMs, ':ttl': ttlSeconds(expiresAtMs) },
        }),
      );
    } catch (error: unknown) {
      if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
      // A longer expiry is stored already: keep it, note the success.
      await this.options.client.send(
        new UpdateCommand({ TableName: this.options.table, Key: key, UpdateExpression: 'SET lastSuccess = :at', ExpressionAttributeValues: { ':at': at } }),
      );
    }
  }

  async isFamiliar(login: string, source: string, now: number): Promise<boolean> {
    const item = (await this.options.client.send(new GetCommand({ TableName: this.options.table, Key: { pk: loginPk(login), sk: source }, ConsistentRead: true }))).Item;
    const expiresAtMs = num(item, 'expiresAtMs');
    return expiresAtMs !== undefined && expiresAtMs > now;
  }

  /** Housekeeping's sweep of what TTL has not deleted yet (a Scan: it runs on a schedule, not per login). */
  async purgeExpired(now: number): Promise<number> {
    const expired = await scanAll(this.options.client, {
      TableName: this.options.table,
      FilterExpression: 'expiresAtMs <= :now',
      ExpressionAttributeValues: { ':now': now },
      ProjectionExpression: 'pk, sk',
    });
    let deleted = 0;
    for (const item of expired) {
      const pk = str(item, 'pk');
      const sk = str(item, 'sk');
      if (pk === undefined || sk === undefined) continue;
      try {
        // Deleted only if still expired: a login renewed meanwhile keeps its source.
        await this.options.client.send(
          new DeleteCommand({ TableName: this.options.table, Key: { pk, sk }, ConditionExpression: 'expiresAtMs <= :now', ExpressionAttributeValues: { ':now': now } }),
        );
        deleted += 1;
      } catch (error: unknown) {
        if (!(error instanceof Error && error.name === 'ConditionalCheckFailedException')) throw error;
      }
    }
    return deleted;
  }
}
