// Sending statistics on DynamoDB, pre-aggregated: the message log (DynamoDbMessageLog) moves each
// message's share of its hour's counters in the same transaction as every status change, so a
// report reads one partition per UTC day (`STAT#<tenant>#<day>`: one item per hour and user, and
// one per hour, user and reason of the SMTP-time refusals) instead of every message. Counters
// have the granularity of an hour: `from` and `to` are taken at the hour they fall in.
import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BUCKET_MS, bucketStart, emptyPoints, type MessageStats, type UserVolume, type VolumePoint, type VolumeQuery } from '../../core/api/stats.js';
import { statsKey } from './dynamodb-message-log.js';
import { deleteAll, num, queryAll, requireStr, scanAll, str, type Item } from './dynamo-items.js';

const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');

export class DynamoDbMessageStats implements MessageStats {
  /** `table` is the message log's table (`messages`), where the counters live. */
  constructor(private readonly options: { client: DynamoDBDocumentClient; table: string }) {}

  async recordRefusal(refusal: { tenantId: string; userId: string; reason: string; at: number }): Promise<void> {
    const hour = bucketStart(refusal.at, 'hour');
    await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.table,
        Key: statsKey(refusal.tenantId, refusal.at, `R#${pad(hour)}#${refusal.userId}#${refusal.reason}`),
        UpdateExpression: 'SET tenantId = :tenant, hourStart = :hour, userId = :user, reason = :reason ADD #count :one',
        ExpressionAttributeNames: { '#count': 'count' },
        ExpressionAttributeValues: { ':tenant': refusal.tenantId, ':hour': hour, ':user': refusal.userId, ':reason': refusal.reason, ':one': 1 },
      }),
    );
  }

  async purgeOlderThan(cutoff: number): Promise<number> {
    const old = await scanAll(this.options.client, {
      TableName: this.options.table,
      FilterExpression: 'begins_with(pk, :stat) AND begins_with(sk, :refusal) AND hourStart < :cutoff',
      ExpressionAttributeValues: { ':stat': 'STAT#', ':refusal': 'R#', ':cutoff': bucketStart(cutoff, 'hour') },
      ProjectionExpression: 'pk, sk',
    });
    await deleteAll(this.options.client, this.options.table, old.map((item) => ({ pk: requireStr(item, 'pk', 'statistics item'), sk: requireStr(item, 'sk', 'statistics item') })));
    return old.length;
  }

  async volume(query: VolumeQuery): Promise<VolumePoint[]> {
    const points = emptyPoints(query.from, query.to, query.bucket);
    const byStart = new Map(points.map((point) => [point.start, point]));
    for (const item of await this.items(query.tenantId, query.from, query.to)) {
      const user = str(item, 'userId');
      const hour = num(item, 'hourStart');
      if (hour === undefined || (query.userId !== undefined && user !== query.userId)) continue;
      const point = byStart.get(bucketStart(hour, query.bucket));
      if (!point) continue;
      const sk = str(item, 'sk') ?? '';
      if (sk.startsWith('R#')) {
        const reason = str(item, 'reason');
        if (reason !== undefined) point.refused[reason] = (point.refused[reason] ?? 0) + (num(item, 'count') ?? 0);
        continue;
      }
      point.messages += num(item, 'messages') ?? 0;
      point.recipients += num(item, 'recipients') ?? 0;
      point.sent += num(item, 'sent') ?? 0;
      for (const [field, value] of Object.entries(item)) {
        if (!field.startsWith('refused:') || typeof value !== 'number' || value === 0) continue;
        const reason = field.slice('refused:'.length);
        point.refused[reason] = (point.refused[reason] ?? 0) + value;
      }
    }
    for (const point of points) for (const [reason, count] of Object.entries(point.refused)) if (count === 0) delete point.refused[reason];
    return points;
  }

  async volumeByUser(tenantId: string, from: number, to: number): Promise<Map<string, UserVolume>> {
    const volumes = new Map<string, UserVolume>();
    for (const item of await this.items(tenantId, from, to)) {
      const user = str(item, 'userId');
      if (!(str(item, 'sk') ?? '').startsWith('H#') || user === undefined || user === '-') continue;
      const messages = num(item, 'messages') ?? 0;
      const recipients = num(item, 'recipients') ?? 0;
      if (messages === 0 && recipients === 0) continue;
      const volume = volumes.get(user) ?? { messages: 0, recipients: 0 };
      volumes.set(user, { messages: volume.messages + messages, recipients: volume.recipients + recipients });
    }
    return volumes;
  }

  /** Every counter item of the tenant whose hour lies in [from, to), a Query per UTC day in parallel. */
  private async items(tenantId: string, from: number, to: number): Promise<Item[]> {
    const first = bucketStart(from, 'hour');
    const days: number[] = [];
    for (let day = bucketStart(first, 'day'); day < to; day += BUCKET_MS.day) days.push(day);
    const pages = await Promise.all(
      days.map((day) =>
        queryAll(this.options.client, {
          TableName: this.options.table,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: 'hourStart >= :from AND hourStart < :to',
          ExpressionAttributeValues: { ':pk': statsKey(tenantId, day, '').pk, ':from': first, ':to': to },
        }),
      ),
    );
    return pages.flat();
  }
}
