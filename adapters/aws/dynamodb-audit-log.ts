// The audit log on DynamoDB (table `audit`). Entries are numbered like SQLite's AUTOINCREMENT:
// an atomic ADD on the sequence item `SEQ` hands out the next id, then the entry is put as
// `LOG` / `E#<id, zero-padded>` (and, when it concerns a tenant, in the `byTenant` index under
// `T#<tenant>`), so both listings are one Query read backwards from `beforeId`. A crash between
// the two writes leaves a gap in the ids, never two entries with one id. The entries share one
// partition: audit entries are written at administrator speed, far below a partition's 1,000
// writes a second.
import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AuditAction, AuditEntry, AuditLog } from '../../core/audit.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { num, queryAll, requireNum, requireStr, str, type Item } from './dynamo-items.js';

const LOG = 'LOG';
const pad = (id: number): string => String(Math.max(0, Math.floor(id))).padStart(15, '0');

function parseDetail(text: string | undefined): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text ?? '{}');
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? Object.fromEntries(Object.entries(parsed)) : {};
  } catch {
    return {};
  }
}

// Every action, so that a new one added to the port fails to compile here until it is listed.
const ACTIONS: Record<AuditAction, true> = {
  'tenant.created': true,
  'tenant.suspended': true,
  'tenant.unsuspended': true,
  'tenant.deleted': true,
  'key.created': true,
  'key.revoked': true,
  'settings.changed': true,
  'ceilings.changed': true,
  'domain.added': true,
  'domain.claimed': true,
  'domain.verified': true,
  'domain.removed': true,
  'user.created': true,
  'user.deleted': true,
  'user.password-set': true,
  'user.locked': true,
  'user.unlocked': true,
  'quarantine.released': true,
  'quarantine.deleted': true,
};
const isAction = (value: string | undefined): value is AuditAction => value !== undefined && Object.hasOwn(ACTIONS, value);

/** Written only by `record`; an item with an action this code does not know is not shown as one. */
function toEntry(item: Item): AuditEntry | undefined {
  const action = str(item, 'action');
  if (!isAction(action)) return undefined;
  return {
    id: requireNum(item, 'id', 'audit entry'),
    at: requireNum(item, 'at', 'audit entry'),
    tenantId: str(item, 'tenantId') ?? null,
    actor: requireStr(item, 'actor', 'audit entry'),
    action,
    target: requireStr(item, 'target', 'audit entry'),
    detail: parseDetail(str(item, 'detail')),
  };
}

export interface DynamoDbAuditLogOptions {
  client: DynamoDBDocumentClient;
  table: string;
  clock?: Clock;
}

export class DynamoDbAuditLog implements AuditLog {
  private readonly clock: Clock;

  constructor(private readonly options: DynamoDbAuditLogOptions) {
    this.clock = options.clock ?? systemClock;
  }

  private async nextId(): Promise<number> {
    const result = await this.options.client.send(
      new UpdateCommand({
        TableName: this.options.table,
        Key: { pk: 'SEQ', sk: '#' },
        UpdateExpression: 'ADD lastId :one',
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const id = num(result.Attributes, 'lastId');
    if (id === undefined) throw new Error('audit log: the sequence item returned no id');
    return id;
  }

  async record(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    const id = await this.nextId();
    await this.options.client.send(
      new PutCommand({
        TableName: this.options.table,
        Item: {
          pk: LOG,
          sk: `E#${pad(id)}`,
          id,
          at: this.clock.now(),
          actor: entry.actor,
          action: entry.action,
          target: entry.target,
          detail: JSON.stringify(entry.detail),
          ...(entry.tenantId === null ? {} : { tenantId: entry.tenantId, gsi1pk: `T#${entry.tenantId}`, gsi1sk: pad(id) }),
        },
      }),
    );
  }

  async list(query: { tenantId?: string; beforeId?: number; limit: number }): Promise<AuditEntry[]> {
    if (query.limit <= 0) return [];
    const before = query.beforeId;
    const items =
      query.tenantId === undefined
        ? await queryAll(
            this.options.client,
            {
              TableName: this.options.table,
              KeyConditionExpression: before === undefined ? 'pk = :pk AND begins_with(sk, :e)' : 'pk = :pk AND sk BETWEEN :e AND :before',
              ExpressionAttributeValues: before === undefined ? { ':pk': LOG, ':e': 'E#' } : { ':pk': LOG, ':e': 'E#', ':before': `E#${pad(before - 1)}` },
              ScanIndexForward: false,
              ConsistentRead: true,
              Limit: query.limit,
            },
            query.limit,
          )
        : await queryAll(
            this.options.client,
            {
              TableName: this.options.table,
              IndexName: 'byTenant',
              KeyConditionExpression: before === undefined ? 'gsi1pk = :pk' : 'gsi1pk = :pk AND gsi1sk < :before',
              ExpressionAttributeValues: before === undefined ? { ':pk': `T#${query.tenantId}` } : { ':pk': `T#${query.tenantId}`, ':before': pad(before) },
              ScanIndexForward: false,
              Limit: query.limit,
            },
            query.limit,
          );
    return items.flatMap((item) => toEntry(item) ?? []);
  }
}
