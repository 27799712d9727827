// The message log on DynamoDB. A message is the partition `M#<id>`: its record (`#MSG`) and its
// events (`E#<at>#<seq>`), so `get` is one strongly consistent Query on the base table; the
// handlers' duplicate-receive checks rely on that read (a GSI cannot be read consistently).
//
// Search goes through two sparse, sharded indexes whose sort key is `<receivedAt>#<id>`:
// `byTenant` (partition `T#<tenant>#<shard>`) and `byTime` (`A#<shard>`, every message). The
// shard is a hash of the message id, so one busy tenant's writes spread over TENANT_SHARDS index
// partitions (and all traffic over ALL_SHARDS), never one hot partition; a search queries every
// shard of its index in parallel and merges them newest first. Items expire by TTL after the
// retention; `purgeOlderThan` does the same at once (housekeeping).
//
// Event counts for the gauges are running counters, spread over EVENT_COUNT_SHARDS items
// (`EVENTS#<shard>`, one attribute per event name) so that no single item takes every event's
// write; reading them is one BatchGet of those items. A provider's id (SES message id) is an item
// of its own, `P#<id>`, naming our message: one strongly consistent GetItem finds it.
import { createHash } from 'node:crypto';
import { BatchWriteCommand, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { bucketStart, NOTICE_EVENT_KEYS, REFUSED_STATUSES, refusalReason } from '../../core/api/stats.js';
import { ConflictError, InvalidInputError, MESSAGE_STATUSES, statusAfterEvent, type MessageEvent, type MessageLog, type MessageRecord, type MessageSearch, type MessageStatus } from '../../core/stores.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { backoff, bool, deleteAll, getMany, isContention, num, queryAll, requireNum, requireStr, scanAll, str, strings, ttlSeconds, type Item } from './dynamo-items.js';

export const TENANT_SHARDS = 8;
export const ALL_SHARDS = 16;
export const EVENT_COUNT_SHARDS = 16;
const EVENT_COUNT_PREFIX = 'n:';
const MESSAGE = '#MSG';
const DAY_MS = 86_400_000;

const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const messagePk = (id: string): string => `M#${id}`;
const shardOf = (id: string, shards: number): number => createHash('sha1').update(id).digest().readUInt32BE(0) % shards;
const sortKey = (receivedAt: number, id: string): string => `${pad(receivedAt)}#${id}`;

/**
 * What one message adds to its hour's statistics: a message and its recipients unless it is a
 * notice Outpost sent on the user's behalf (a DSN or forwarded bounce), sent when delivered, and
 * one refusal under its reason when not delivered. Statistics are pre-aggregated: every change of
 * a message's status moves its share in the same transaction (see DynamoDbMessageStats).
 */
interface Share {
  messages: number;
  recipients: number;
  sent: number;
  refused: Record<string, number>;
}

function contribution(state: { notice: boolean; status: MessageStatus; reason: string | undefined; recipients: number }): Share {
  if (state.notice) return { messages: 0, recipients: 0, sent: 0, refused: {} };
  return {
    messages: 1,
    recipients: state.recipients,
    sent: state.status === 'delivered' || state.status === 'partially-delivered' ? 1 : 0,
    refused: state.reason === undefined ? {} : { [state.reason]: 1 },
  };
}

function difference(after: Share, before: Share): Share {
  const refused: Record<string, number> = {};
  for (const [reason, count] of Object.entries(after.refused)) refused[reason] = (refused[reason] ?? 0) + count;
  for (const [reason, count] of Object.entries(before.refused)) refused[reason] = (refused[reason] ?? 0) - count;
  return { messages: after.messages - before.messages, recipients: after.recipients - before.recipients, sent: after.sent - before.sent, refused };
}

/** The counter attributes of a share: `refused:<reason>` per reason. */
function shareFields(share: Share): Record<string, number> {
  return { messages: share.messages, recipients: share.recipients, sent: share.sent, ...Object.fromEntries(Object.entries(share.refused).map(([reason, count]) => [`refused:${reason}`, count])) };
}

/** Statistics of a tenant live in one partition per UTC day, one item per hour and user. */
export function statsKey(tenantId: string, at: number, sk: string): { pk: string; sk: string } {
  return { pk: `STAT#${tenantId}#${bucketStart(at, 'day')}`, sk };
}

export interface DynamoDbMessageLogOptions {
  client: DynamoDBDocumentClient;
  table: string;
  clock?: Clock;
  /** Days items live before DynamoDB's TTL removes them (messageLog.retentionDays). Default 90. */
  retentionDays?: number;
}

function isStatus(value: string | undefined): value is MessageStatus {
  return MESSAGE_STATUSES.some((status) => status === value);
}

function toRecord(item: Item): MessageRecord {
  const status = str(item, 'status');
  if (!isStatus(status)) throw new Error(`message item has an unknown status "${status}"`);
  return {
    id: requireStr(item, 'id', 'message'),
    tenantId: str(item, 'tenantId') ?? null,
    userId: str(item, 'userId') ?? null,
    identity: str(item, 'identity') ?? null,
    mailFrom: str(item, 'mailFrom') ?? '',
    rcptTo: strings(item, 'rcptTo') ?? [],
    size: requireNum(item, 'size', 'message'),
    subject: str(item, 'subject') ?? null,
    status,
    receivedAt: requireNum(item, 'receivedAt', 'message'),
    updatedAt: requireNum(item, 'updatedAt', 'message'),
  };
}

function toEvent(item: Item): MessageEvent {
  let detail: Record<string, unknown> = {};
  const parsed: unknown = JSON.parse(str(item, 'detail') ?? '{}');
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) detail = Object.fromEntries(Object.entries(parsed));
  return { at: requireNum(item, 'at', 'message event'), event: requireStr(item, 'event', 'message event'), detail };
}

export class DynamoDbMessageLog implements MessageLog {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly clock: Clock;
  private readonly retentionMs: number;
  /** Orders the events this process writes within one millisecond. */
  private sequence = 0;

  constructor(options: DynamoDbMessageLogOptions) {
    this.client = options.client;
    this.table = options.table;
    this.clock = options.clock ?? systemClock;
    this.retentionMs = (options.retentionDays ?? 90) * DAY_MS;
  }

  async create(record: Omit<MessageRecord, 'updatedAt'>): Promise<void> {
    const sk = sortKey(record.receivedAt, record.id);
    const share = contribution({ notice: false, status: record.status, reason: REFUSED_STATUSES.has(record.status) ? record.status : undefined, recipients: record.rcptTo.length });
    const stats = this.statsUpdate(record.tenantId, record.userId, record.receivedAt, share);
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: {
                  pk: messagePk(record.id),
                  sk: MESSAGE,
                  ...record,
                  updatedAt: record.receivedAt,
                  ...(REFUSED_STATUSES.has(record.status) ? { refusedReason: record.status } : {}),
                  // Lower-cased copies for case-insensitive search filters.
                  senderLower: record.mailFrom.toLowerCase(),
                  rcptLower: record.rcptTo.map((address) => address.toLowerCase()),
                  ...(record.tenantId === null ? {} : { gsi1pk: `T#${record.tenantId}#${shardOf(record.id, TENANT_SHARDS)}`, gsi1sk: sk }),
                  gsi2pk: `A#${shardOf(record.id, ALL_SHARDS)}`,
                  gsi2sk: sk,
                  expiresAt: ttlSeconds(record.receivedAt + this.retentionMs),
                },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            ...(stats ? [stats] : []),
          ],
        }),
      );
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'TransactionCanceledException' && /ConditionalCheckFailed/.test(error.message)) throw new ConflictError(`message ${record.id} is already in the log`);
      throw error;
    }
  }

  async addEvent(messageId: string, event: string, detail: Record<string, unknown> = {}, status?: MessageStatus): Promise<void> {
    // The running count is a separate write, in parallel: no extra round trip on the way.
    await Promise.all([this.countEvent(event), this.recordEvent(messageId, event, detail, status)]);
  }

  private async recordEvent(messageId: string, event: string, detail: Record<string, unknown>, status: MessageStatus | undefined): Promise<void> {
    const now = this.clock.now();
    this.sequence = (this.sequence + 1) % 1_000_000;
    const put = {
      TableName: this.table,
      Item: {
        pk: messagePk(messageId),
        sk: `E#${pad(now)}#${String(this.sequence).padStart(6, '0')}${Math.random().toString(36).slice(2, 8)}`,
        at: now,
        event,
        detail: JSON.stringify(detail),
        expiresAt: ttlSeconds(now + this.retentionMs),
      },
    };
    const notice = event === 'queued' && NOTICE_EVENT_KEYS.some((key) => detail[key] !== undefined && detail[key] !== null);
    // Only events that can change the statistics need the message read first.
    if (!status && !notice && !Array.isArray(detail.symbols)) {
      await this.client.send(new PutCommand(put));
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const items = await this.partition(messageId);
      const item = items.find((candidate) => str(candidate, 'sk') === MESSAGE);
      const found = item ? { message: toRecord(item), events: items.filter((candidate) => str(candidate, 'sk')?.startsWith('E#')).map(toEvent) } : undefined;
      if (!found || !item) {
        // No such message (as in SQLite, the event is still kept; there is no status to move).
        await this.client.send(new PutCommand(put));
        return;
      }
      const { message, events } = found;
      const revision = num(item, 'revision');
      const before = { notice: bool(item, 'notice') ?? false, status: message.status, reason: str(item, 'refusedReason'), recipients: message.rcptTo.length };
      const nextStatus = statusAfterEvent(message.status, status);
      const after = {
        notice: before.notice || notice,
        status: nextStatus,
        reason: REFUSED_STATUSES.has(nextStatus) ? refusalReason(nextStatus, [...events, { detail }]) : undefined,
        recipients: before.recipients,
      };
      const stats = this.statsUpdate(message.tenantId, message.userId, message.receivedAt, difference(contribution(after), contribution(before)));
      try {
        await this.client.send(
          new TransactWriteCommand({
            TransactItems: [
              { Put: put },
              {
                Update: {
                  TableName: this.table,
                  Key: { pk: messagePk(messageId), sk: MESSAGE },
                  UpdateExpression: `SET #status = :status, updatedAt = :now, notice = :notice, revision = :next${after.reason === undefined ? ' REMOVE refusedReason' : ', refusedReason = :reason'}`,
                  // The statistics moved from what was read: it must still be so.
                  ConditionExpression: revision === undefined ? 'attribute_not_exists(revision)' : 'revision = :revision',
                  ExpressionAttributeNames: { '#status': 'status' },
                  ExpressionAttributeValues: {
                    ':status': nextStatus,
                    ':now': status ? now : message.updatedAt,
                    ':notice': after.notice,
                    ':next': (revision ?? 0) + 1,
                    ...(revision === undefined ? {} : { ':revision': revision }),
                    ...(after.reason === undefined ? {} : { ':reason': after.reason }),
                  },
                },
              },
              ...(stats ? [stats] : []),
            ],
          }),
        );
        return;
      } catch (error: unknown) {
        if (!isContention(error) || attempt >= 50) throw error;
        await backoff(attempt);
      }
    }
  }

  /** Adds one to the event's running count, on a shard chosen at random (see the top of the file). */
  private async countEvent(event: string): Promise<void> {
    const shard = Math.floor(Math.random() * EVENT_COUNT_SHARDS);
    await this.client.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: `EVENTS#${shard}`, sk: MESSAGE },
        UpdateExpression: 'ADD #event :one',
        ExpressionAttributeNames: { '#event': `${EVENT_COUNT_PREFIX}${event}` },
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
  }

  async eventCounts(): Promise<Record<string, number>> {
    const shards = await getMany(this.client, this.table, Array.from({ length: EVENT_COUNT_SHARDS }, (_, shard) => ({ pk: `EVENTS#${shard}`, sk: MESSAGE })));
    const counts: Record<string, number> = {};
    for (const item of shards.values()) {
      for (const [name, value] of Object.entries(item)) {
        if (!name.startsWith(EVENT_COUNT_PREFIX) || typeof value !== 'number') continue;
        const event = name.slice(EVENT_COUNT_PREFIX.length);
        counts[event] = (counts[event] ?? 0) + value;
      }
    }
    return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  async recordProviderIds(messageId: string, providerIds: string[]): Promise<void> {
    const expiresAt = ttlSeconds(this.clock.now() + this.retentionMs);
    for (let start = 0; start < providerIds.length; start += 25) {
      let pending = providerIds.slice(start, start + 25);
      for (let attempt = 0; pending.length > 0; attempt++) {
        const requests = pending.map((providerId) => ({ PutRequest: { Item: { pk: `P#${providerId}`, sk: MESSAGE, messageId, expiresAt } } }));
        const result = await this.client.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
        // What DynamoDB did not take (throttling) is written again, after a pause.
        pending = (result.UnprocessedItems?.[this.table] ?? []).flatMap((request) => {
          const pk = str(request.PutRequest?.Item, 'pk');
          return pk === undefined ? [] : [pk.slice(2)];
        });
        if (pending.length > 0) await backoff(attempt);
      }
    }
  }

  async findByProviderId(providerId: string): Promise<string | undefined> {
    const item = (await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: `P#${providerId}`, sk: MESSAGE }, ConsistentRead: true }))).Item;
    return str(item, 'messageId');
  }

  /** The message's record and events, strongly consistent. */
  private partition(messageId: string): Promise<Item[]> {
    return queryAll(this.client, { TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': messagePk(messageId) }, ConsistentRead: true });
  }

  /** The counter update of an hour's statistics item, or undefined when nothing changes. */
  private statsUpdate(tenantId: string | null, userId: string | null, receivedAt: number, delta: Share) {
    const entries = Object.entries(shareFields(delta)).filter(([, value]) => value !== 0);
    if (tenantId === null || entries.length === 0) return undefined;
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':tenant': tenantId, ':hour': bucketStart(receivedAt, 'hour'), ':user': userId ?? '-' };
    entries.forEach(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:v${i}`] = value;
    });
    return {
      Update: {
        TableName: this.table,
        Key: statsKey(tenantId, receivedAt, `H#${pad(bucketStart(receivedAt, 'hour'))}#${userId ?? '-'}`),
        UpdateExpression: `SET tenantId = :tenant, hourStart = :hour, userId = :user ADD ${entries.map((_, i) => `#f${i} :v${i}`).join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  }

  async get(messageId: string): Promise<{ message: MessageRecord; events: MessageEvent[] } | undefined> {
    const items = await this.partition(messageId);
    const message = items.find((item) => str(item, 'sk') === MESSAGE);
    if (!message) return undefined;
    return { message: toRecord(message), events: items.filter((item) => str(item, 'sk')?.startsWith('E#')).map(toEvent) };
  }

  async search(query: MessageSearch): Promise<{ items: MessageRecord[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    const cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
    const byTenant = query.tenantId !== undefined;
    const [index, pkName, skName, shards] = byTenant ? (['byTenant', 'gsi1pk', 'gsi1sk', TENANT_SHARDS] as const) : (['byTime', 'gsi2pk', 'gsi2sk', ALL_SHARDS] as const);
    // Newest first below the cursor (inclusive here, the cursor's own item is dropped below) and `to`.
    const upperBounds = [cursor ?? '~', query.to !== undefined ? `${pad(query.to - 1)}#~` : '~'];
    const upper = upperBounds.reduce((a, b) => (a < b ? a : b));
    const lower = query.from !== undefined ? pad(query.from) : '0';
    const filters: string[] = [];
    const values: Record<string, unknown> = { ':lower': lower, ':upper': upper };
    const names: Record<string, string> = { '#pk': pkName, '#sk': skName };
    if (query.userId !== undefined) {
      filters.push('userId = :user');
      values[':user'] = query.userId;
    }
    if (query.sender !== undefined) {
      filters.push('senderLower = :sender');
      values[':sender'] = query.sender.toLowerCase();
    }
    if (query.recipient !== undefined) {
      filters.push('contains(rcptLower, :recipient)');
      values[':recipient'] = query.recipient.toLowerCase();
    }
    if (query.status !== undefined) {
      filters.push('#status = :status');
      names['#status'] = 'status';
      values[':status'] = query.status;
    }
    const pages = await Promise.all(
      Array.from({ length: shards }, (_, shard) =>
        queryAll(
          this.client,
          {
            TableName: this.table,
            IndexName: index,
            KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :lower AND :upper',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ...values, ':pk': byTenant ? `T#${query.tenantId}#${shard}` : `A#${shard}` },
            ...(filters.length > 0 ? { FilterExpression: filters.join(' AND ') } : {}),
            ScanIndexForward: false,
          },
          limit + 2,
        ),
      ),
    );
    const merged = pages
      .flat()
      .map((item) => ({ sk: str(item, skName) ?? '', item }))
      .filter((entry) => cursor === undefined || entry.sk < cursor)
      .sort((a, b) => (a.sk < b.sk ? 1 : a.sk > b.sk ? -1 : 0));
    const page = merged.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map((entry) => toRecord(entry.item)), nextCursor: merged.length > limit && last ? Buffer.from(last.sk).toString('base64url') : null };
  }

  async purgeOlderThan(cutoff: number): Promise<number> {
    const old = await scanAll(this.client, {
      TableName: this.table,
      FilterExpression: 'sk = :message AND receivedAt < :cutoff',
      ExpressionAttributeValues: { ':message': MESSAGE, ':cutoff': cutoff },
      ProjectionExpression: 'pk',
    });
    for (const message of old) {
      const pk = str(message, 'pk');
      if (pk === undefined) continue;
      const items = await queryAll(this.client, { TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk }, ProjectionExpression: 'pk, sk' });
      // Events first: a message record without its events is harmless, events without it are not found.
      const keys = items.flatMap((item) => (str(item, 'sk') === undefined ? [] : [{ pk, sk: str(item, 'sk') ?? '' }]));
      keys.sort((a, b) => (a.sk === MESSAGE ? 1 : b.sk === MESSAGE ? -1 : 0));
      await deleteAll(this.client, this.table, keys);
    }
    return old.length;
  }
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^\d{15}#.+$/.test(text)) throw new InvalidInputError('cursor is not one this search returned; start again without it');
  return text;
}

