// Lock states and their history on DynamoDB, in the partition `U#<user>`: the state item
// (`#STATE`, with the version the core's optimistic concurrency checks) and one item per event.
// `write` puts the state on the condition that the stored version is still the expected one,
// and the events, in one transaction: two sessions locking the same user cannot both win, and a
// lost write leaves no event behind. Locked states are also in the sparse `locked` index (few
// items: only users locked right now), which `listLocked` reads.
import { GetCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Symbol } from '../../core/checks/check.js';
import type { LockEvent, LockEventKind, LockPlacer, LockState, LockStore } from '../../core/locks.js';
import { bool, num, queryAll, requireNum, requireStr, str, type Item } from './dynamo-items.js';

const STATE = '#STATE';
const LOCKED = 'LOCKED';
const userPk = (userId: string): string => `U#${userId}`;
const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const KINDS: ReadonlySet<string> = new Set<LockEventKind>(['lock', 'timed-unlock', 'manual-unlock']);

/** Who placed a lock by hand; absent (an automatic lock, or an item older than the field) is null. */
function placer(value: string | undefined): LockPlacer | null {
  return value === 'operator' || value === 'tenant' ? value : null;
}

function parseJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? 'null');
  } catch {
    return null;
  }
}

function parseReasons(text: string | undefined): Symbol[] {
  const parsed = parseJson(text);
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((item: unknown): Symbol[] => {
    if (typeof item !== 'object' || item === null) return [];
    const fields = Object.fromEntries(Object.entries(item));
    if (typeof fields.name !== 'string') return [];
    const symbol: Symbol = { name: fields.name };
    if (typeof fields.score === 'number') symbol.score = fields.score;
    if (typeof fields.evidence === 'string') symbol.evidence = fields.evidence;
    else if (typeof fields.evidence === 'object' && fields.evidence !== null) symbol.evidence = Object.fromEntries(Object.entries(fields.evidence));
    return [symbol];
  });
}

function toState(item: Item): LockState {
  return {
    userId: requireStr(item, 'userId', 'lock state'),
    tenantId: requireStr(item, 'tenantId', 'lock state'),
    identity: requireStr(item, 'identity', 'lock state'),
    locked: bool(item, 'locked') ?? false,
    permanent: bool(item, 'permanent') ?? false,
    lockedAt: num(item, 'lockedAt') ?? null,
    until: num(item, 'until') ?? null,
    reasons: parseReasons(str(item, 'reasons')),
    timedUnlocks: num(item, 'timedUnlocks') ?? 0,
    placedBy: placer(str(item, 'placedBy')),
    version: requireNum(item, 'version', 'lock state'),
  };
}

function toEvent(item: Item): LockEvent | undefined {
  const parsed = parseJson(str(item, 'detail'));
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const fields = Object.fromEntries(Object.entries(parsed));
  const { kind, userId, tenantId, identity, at, timedUnlocks } = fields;
  // Written only by `write` below; the checks keep anything else from passing as an event.
  if (typeof kind !== 'string' || !KINDS.has(kind) || typeof userId !== 'string' || typeof tenantId !== 'string' || typeof identity !== 'string' || typeof at !== 'number') return undefined;
  const event: LockEvent = { kind: kind === 'lock' ? 'lock' : kind === 'timed-unlock' ? 'timed-unlock' : 'manual-unlock', userId, tenantId, identity, at, timedUnlocks: typeof timedUnlocks === 'number' ? timedUnlocks : 0 };
  if (Array.isArray(fields.reasons)) event.reasons = parseReasons(JSON.stringify(fields.reasons));
  if (typeof fields.until === 'number' || fields.until === null) event.until = fields.until;
  if (typeof fields.permanent === 'boolean') event.permanent = fields.permanent;
  if (typeof fields.by === 'string') event.by = fields.by;
  if (typeof fields.reason === 'string') event.reason = fields.reason;
  return event;
}

export interface DynamoDbLockStoreOptions {
  client: DynamoDBDocumentClient;
  table: string;
}

export class DynamoDbLockStore implements LockStore {
  private sequence = 0;

  constructor(private readonly options: DynamoDbLockStoreOptions) {}

  async read(userId: string): Promise<LockState | undefined> {
    const result = await this.options.client.send(new GetCommand({ TableName: this.options.table, Key: { pk: userPk(userId), sk: STATE }, ConsistentRead: true }));
    return result.Item ? toState(result.Item) : undefined;
  }

  async write(next: LockState, expectedVersion: number, events: LockEvent[]): Promise<boolean> {
    const table = this.options.table;
    const state = {
      TableName: table,
      Item: {
        pk: userPk(next.userId),
        sk: STATE,
        userId: next.userId,
        tenantId: next.tenantId,
        identity: next.identity,
        locked: next.locked,
        permanent: next.permanent,
        lockedAt: next.lockedAt,
        until: next.until,
        reasons: JSON.stringify(next.reasons),
        timedUnlocks: next.timedUnlocks,
        placedBy: next.placedBy,
        version: next.version,
        ...(next.locked ? { gsi1pk: LOCKED, gsi1sk: `${next.tenantId}#${pad(next.lockedAt ?? 0)}#${next.userId}` } : {}),
      },
      ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(pk) OR version = :zero' : 'version = :expected',
      ExpressionAttributeValues: expectedVersion === 0 ? { ':zero': 0 } : { ':expected': expectedVersion },
    };
    const eventPuts = events.map((event) => {
      this.sequence = (this.sequence + 1) % 1_000_000;
      return { Put: { TableName: table, Item: { pk: userPk(next.userId), sk: `E#${pad(event.at)}#${String(this.sequence).padStart(6, '0')}${Math.random().toString(36).slice(2, 8)}`, detail: JSON.stringify(event) } } };
    });
    try {
      await this.options.client.send(new TransactWriteCommand({ TransactItems: [{ Put: state }, ...eventPuts] }));
      return true;
    } catch (error: unknown) {
      if (error instanceof Error && (error.name === 'TransactionCanceledException' || error.name === 'TransactionConflictException')) return false;
      throw error;
    }
  }

  async history(userId: string): Promise<LockEvent[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
      ExpressionAttributeValues: { ':pk': userPk(userId), ':events': 'E#' },
      ConsistentRead: true,
    });
    return items.map(toEvent).filter((event): event is LockEvent => event !== undefined);
  }

  async listLocked(filter: { tenantId?: string }): Promise<LockState[]> {
    const items = await queryAll(this.options.client, {
      TableName: this.options.table,
      IndexName: 'locked',
      KeyConditionExpression: filter.tenantId === undefined ? 'gsi1pk = :locked' : 'gsi1pk = :locked AND begins_with(gsi1sk, :tenant)',
      ExpressionAttributeValues: filter.tenantId === undefined ? { ':locked': LOCKED } : { ':locked': LOCKED, ':tenant': `${filter.tenantId}#` },
    });
    return items
      .map(toState)
      .filter((state) => state.locked)
      .sort((a, b) => (a.lockedAt ?? 0) - (b.lockedAt ?? 0));
  }
}
