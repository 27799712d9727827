// Held mail on DynamoDB (table `holds`). A sender's held queue jobs and its hold live in the
// partition `U#<user>`: one item per held job `H#<id>` (the job body verbatim; the message stays
// in S3) and `#HOLD` while the sender is on hold by hand. The item's key follows from the job's
// id alone, so `add` is idempotent by a condition on its absence. Listings oldest first go
// through `byTenant` (`T#<tenant>`) and, across tenants, `byTime` split over 4 shards by a hash
// of the id (a locked spammer's queue is held in a burst, which one partition would throttle);
// both sort by `<heldAt>#<id>`. `byId` (the job's id) finds the item a claim removes, since
// `remove` is given the id alone.
//
// A claim is exclusive per item: each candidate is taken by a conditional update (no claim yet,
// or a claim older than `staleBefore`), so two releases (or a release and a purge) at once split
// the items between them and never both re-queue one job; `remove` deletes only on the
// condition that the item is still taken by the claim given.
import { createHash } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { HeldMessage, HeldStage, HeldSummary, HoldReason, HoldStore, SenderHold } from '../../core/holds.js';
import { queryAll, requireNum, requireStr, str, type Item } from './dynamo-items.js';

const SHARDS = 4;
const HOLD = '#HOLD';
const HELD = '#HELD';
const STAGES: readonly HeldStage[] = ['scan', 'deliver'];
const REASONS: readonly HoldReason[] = ['locked', 'manual'];
const userPk = (userId: string): string => `U#${userId}`;
const heldSk = (id: string): string => `H#${id}`;
const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const shardOf = (id: string): number => createHash('sha256').update(id).digest().readUInt8(0) % SHARDS;

function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

function toHeld(item: Item): HeldMessage {
  // Written only by `add`; an unknown value falls back to what is safe to re-queue (as on SQLite).
  const stage = STAGES.find((value) => value === str(item, 'stage')) ?? 'scan';
  const reason = REASONS.find((value) => value === str(item, 'reason')) ?? 'manual';
  return {
    id: requireStr(item, 'id', 'held message'),
    messageId: requireStr(item, 'messageId', 'held message'),
    tenantId: requireStr(item, 'tenantId', 'held message'),
    userId: requireStr(item, 'userId', 'held message'),
    identity: requireStr(item, 'identity', 'held message'),
    stage,
    body: requireStr(item, 'body', 'held message'),
    blobKey: requireStr(item, 'blobKey', 'held message'),
    reason,
    heldAt: requireNum(item, 'heldAt', 'held message'),
  };
}

const oldestFirst = (a: HeldMessage, b: HeldMessage): number => a.heldAt - b.heldAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export interface DynamoDbHoldStoreOptions {
  client: DynamoDBDocumentClient;
  table: string;
}

export class DynamoDbHoldStore implements HoldStore {
  constructor(private readonly options: DynamoDbHoldStoreOptions) {}

  async add(held: HeldMessage): Promise<boolean> {
    try {
      await this.options.client.send(
        new PutCommand({
          TableName: this.options.table,
          Item: {
            pk: userPk(held.userId),
            sk: heldSk(held.id),
            ...held,
            gsi1pk: `T#${held.tenantId}`,
            gsi1sk: `${pad(held.heldAt)}#${held.id}`,
            gsi2pk: `HELD#${shardOf(held.id)}`,
            gsi2sk: `${pad(held.heldAt)}#${held.id}`,
            gsi3pk: held.id,
            gsi3sk: HELD,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error: unknown) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** A sender's held jobs, read strongly consistent from its partition (claims decide on them). */
  private async ofSender(userId: string): Promise<Item[]> {
    return queryAll(this.options.client, {
      TableName: this.options.table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :held)',
      ExpressionAttributeValues: { ':pk': userPk(userId), ':held': 'H#' },
      ConsistentRead: true,
    });
  }

  private async ofTenant(tenantId: string, limit = Infinity): Promise<Item[]> {
    return queryAll(
      this.options.client,
      { TableName: this.options.table, IndexName: 'byTenant', KeyConditionExpression: 'gsi1pk = :pk', ExpressionAttributeValues: { ':pk': `T#${tenantId}` } },
      limit,
    );
  }

  private async everywhere(limit = Infinity): Promise<Item[]> {
    const shards = await Promise.all(
      Array.from({ length: SHARDS }, (_, shard) =>
        queryAll(
          this.options.client,
          { TableName: this.options.table, IndexName: 'byTime', KeyConditionExpression: 'gsi2pk = :pk', ExpressionAttributeValues: { ':pk': `HELD#${shard}` } },
          limit,
        ),
      ),
    );
    return shards.flat();
  }

  async list(filter: { userId?: string; tenantId?: string; limit?: number }): Promise<HeldMessage[]> {
    const limit = filter.limit ?? 1000;
    const items =
      filter.userId !== undefined ? await this.ofSender(filter.userId) : filter.tenantId !== undefined ? await this.ofTenant(filter.tenantId, limit) : await this.everywhere(limit);
    return items.map(toHeld).sort(oldestFirst).slice(0, limit);
  }

  async heldSenders(): Promise<string[]> {
    const users = new Set((await this.everywhere()).flatMap((item) => str(item, 'userId') ?? []));
    return [...users];
  }

  async claim(userId: string, claim: string, now: number, staleBefore: number): Promise<HeldMessage[]> {
    const candidates = (await this.ofSender(userId)).filter((item) => {
      const claimedAt = item.claimedAt;
      return str(item, 'claim') === undefined || (typeof claimedAt === 'number' && claimedAt < staleBefore);
    });
    const taken: HeldMessage[] = [];
    // A few at a time: a locked spammer may have thousands held.
    for (let i = 0; i < candidates.length; i += 25) {
      const results = await Promise.all(candidates.slice(i, i + 25).map((item) => this.take(item, claim, now, staleBefore)));
      taken.push(...results.flatMap((held) => held ?? []));
    }
    return taken.sort(oldestFirst);
  }

  private async take(item: Item, claim: string, now: number, staleBefore: number): Promise<HeldMessage | undefined> {
    try {
      const result = await this.options.client.send(
        new UpdateCommand({
          TableName: this.options.table,
          Key: { pk: item.pk, sk: item.sk },
          UpdateExpression: 'SET #claim = :claim, claimedAt = :now',
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#claim) OR claimedAt < :stale)',
          ExpressionAttributeNames: { '#claim': 'claim' },
          ExpressionAttributeValues: { ':claim': claim, ':now': now, ':stale': staleBefore },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return result.Attributes ? toHeld(result.Attributes) : undefined;
    } catch (error: unknown) {
      // Another claim took it first (or it was removed): it is theirs.
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async remove(id: string, claim: string): Promise<void> {
    // The sender is not known from the id: `byId` finds the item (claimed long before, so the
    // index has it); the delete itself is conditioned on the base table's item.
    const items = await queryAll(this.options.client, {
      TableName: this.options.table,
      IndexName: 'byId',
      KeyConditionExpression: 'gsi3pk = :id',
      ExpressionAttributeValues: { ':id': id },
    });
    for (const item of items) {
      try {
        await this.options.client.send(
          new DeleteCommand({
            TableName: this.options.table,
            Key: { pk: item.pk, sk: item.sk },
            ConditionExpression: '#claim = :claim',
            ExpressionAttributeNames: { '#claim': 'claim' },
            ExpressionAttributeValues: { ':claim': claim },
          }),
        );
      } catch (error: unknown) {
        if (!isConditionFailure(error)) throw error;
      }
    }
  }

  async putSenderHold(hold: SenderHold): Promise<void> {
    try {
      await this.options.client.send(
        new PutCommand({
          TableName: this.options.table,
          Item: { pk: userPk(hold.userId), sk: HOLD, userId: hold.userId, tenantId: hold.tenantId, identity: hold.identity, heldBy: hold.by, at: hold.at },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error: unknown) {
      // On hold already: the first hold (who, when) stays.
      if (!isConditionFailure(error)) throw error;
    }
  }

  async senderHold(userId: string): Promise<SenderHold | undefined> {
    const item = (await this.options.client.send(new GetCommand({ TableName: this.options.table, Key: { pk: userPk(userId), sk: HOLD }, ConsistentRead: true }))).Item;
    if (!item) return undefined;
    return {
      userId: requireStr(item, 'userId', 'sender hold'),
      tenantId: requireStr(item, 'tenantId', 'sender hold'),
      identity: requireStr(item, 'identity', 'sender hold'),
      by: requireStr(item, 'heldBy', 'sender hold'),
      at: requireNum(item, 'at', 'sender hold'),
    };
  }

  async removeSenderHold(userId: string): Promise<boolean> {
    const result = await this.options.client.send(new DeleteCommand({ TableName: this.options.table, Key: { pk: userPk(userId), sk: HOLD }, ReturnValues: 'ALL_OLD' }));
    return result.Attributes !== undefined;
  }

  async summary(filter: { tenantId?: string; userId?: string; overdueBefore: number }): Promise<HeldSummary[]> {
    const items = filter.userId !== undefined ? await this.ofSender(filter.userId) : filter.tenantId !== undefined ? await this.ofTenant(filter.tenantId) : await this.everywhere();
    const groups = new Map<string, HeldSummary>();
    for (const held of items.map(toHeld)) {
      const key = `${held.tenantId}\u0000${held.userId}\u0000${held.reason}`;
      const group = groups.get(key) ?? { tenantId: held.tenantId, userId: held.userId, identity: held.identity, reason: held.reason, count: 0, oldestAt: held.heldAt, overdue: 0 };
      group.count += 1;
      group.oldestAt = Math.min(group.oldestAt, held.heldAt);
      if (held.identity > group.identity) group.identity = held.identity;
      if (held.heldAt < filter.overdueBefore) group.overdue += 1;
      groups.set(key, group);
    }
    return [...groups.values()].sort((a, b) => a.oldestAt - b.oldestAt);
  }
}
