// CounterStore on DynamoDB: the same sliding window log as the SQLite store (core/counters.ts says
// why), made exact under concurrency with optimistic concurrency on a head item per key.
//
// Items of one counter key (partition `K#<key>`):
//   `#HEAD`                   {sum, version, floor, liveUntil, windowMs, kind}
//   `E#<at>#<uuid>`           one use of a window limit {at, units, leavesAt}
//   `D#<at>#<member>`         the last sighting of a distinct member {at, member, leavesAt}
//   `M#<member>`              where that sighting is {lastSeen}
// and of one SMTP transaction holding reservations (partition `H#<transaction>`): one item per
// held entry, so that settling finds them without a scan.
//
// `sum` counts the units (or distinct members) of the entries newer than `floor`. A reserve reads
// the head and only the entries that left the window since (one strongly consistent Query:
// `sk <= E#<now − window>$`, the head sorts first), so used = sum − their units, and commits in
// one TransactWriteItems: every head of the request updated on the condition that its version
// did not change, the new entries put, the expired ones deleted. A lost race cancels the whole
// transaction, which is read again and retried with jitter: concurrent reserves can never admit
// more than the limit. `liveUntil` is when the newest counted entry leaves the window; a head past
// it counts nothing whatever its sum, so DynamoDB's TTL may delete heads and entries in any order:
// an entry's TTL (two windows after its use) passes only after every head that counted it has
// either subtracted it or gone past liveUntil.
import { randomUUID } from 'node:crypto';
import { GetCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { retryTime, type CounterEntry, type CounterStore, type DistinctLimit, type Hold, type Refusal, type ReserveOutcome, type WindowLimit } from '../../core/counters.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { backoff, deleteAll, getMany, isContention, itemKey, num, queryAll, requireNum, scanAll, str, ttlSeconds, type Item } from './dynamo-items.js';

type Action = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const HEAD = '#HEAD';
const MAX_ACTIONS = 100;
const MAX_ATTEMPTS = 200;

const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const keyPk = (key: string): string => `K#${key}`;
const holdPk = (transaction: string): string => `H#${transaction}`;
const entrySk = (at: number, id: string): string => `E#${pad(at)}#${id}`;
const seenSk = (at: number, member: string): string => `D#${pad(at)}#${member}`;
const memberSk = (member: string): string => `M#${member}`;
/** The last sort key of `prefix` items made at or before `at` ('$' sorts right after '#'). */
const upTo = (prefix: 'E' | 'D', at: number): string => `${prefix}#${pad(at)}$`;

interface Head {
  version: number;
  sum: number;
  floor: number;
  liveUntil: number;
}

/** What a reserve read about one key: its usage now, and what to write to move it forward. */
interface KeyState {
  pk: string;
  windowMs: number;
  kind: 'window' | 'distinct';
  /** Version to condition on; undefined when there is no head item. */
  version: number | undefined;
  used: number;
  floor: number;
  liveUntil: number;
  /** Entries that left the window and can be deleted. */
  expired: string[];
}

export interface DynamoDbCounterStoreOptions {
  client: DynamoDBDocumentClient;
  table: string;
  clock?: Clock;
}

export class DynamoDbCounterStore implements CounterStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly clock: Clock;

  constructor(options: DynamoDbCounterStoreOptions) {
    this.client = options.client;
    this.table = options.table;
    this.clock = options.clock ?? systemClock;
  }

  async reserve(request: { limits: WindowLimit[]; distinct?: DistinctLimit[]; hold?: Hold }): Promise<ReserveOutcome> {
    const outcome = await this.commit(request.limits, request.distinct ?? [], request.hold, true);
    return outcome.ok ? { ok: true } : outcome;
  }

  async add(key: string, units: number, windowMs: number): Promise<number> {
    const outcome = await this.commit([{ key, units, limit: Infinity, windowMs }], [], undefined, false);
    if (!outcome.ok) throw new Error('an unconditional add was refused');
    return (outcome.used[0] ?? 0) + units;
  }

  async total(key: string, windowMs: number): Promise<number> {
    return (await this.entries(key, windowMs)).reduce((sum, entry) => sum + entry.units, 0);
  }

  async entries(key: string, windowMs: number): Promise<CounterEntry[]> {
    return this.liveEntries(keyPk(key), windowMs, this.clock.now());
  }

  async countDistinct(key: string, windowMs: number): Promise<number> {
    const now = this.clock.now();
    const live = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': keyPk(key), ':from': upTo('D', now - windowMs), ':to': 'D$' },
      ProjectionExpression: 'sk',
      ConsistentRead: true,
    });
    return live.length;
  }

  async reset(key: string): Promise<void> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keyPk(key) },
      ProjectionExpression: 'pk, sk',
      ConsistentRead: true,
    });
    // The head goes first, so that a reserve racing with the reset starts a fresh window.
    const keys = items.flatMap((item) => {
      const sk = str(item, 'sk');
      return sk === undefined ? [] : [{ pk: keyPk(key), sk }];
    });
    keys.sort((a, b) => (a.sk === HEAD ? -1 : b.sk === HEAD ? 1 : 0));
    await deleteAll(this.client, this.table, keys);
  }

  /**
   * Deletes the entries that left their window (on AWS the table's TTL does this too, later),
   * moving each key's head past them in the same transaction; returns how many were deleted.
   */
  async purgeExpired(): Promise<number> {
    const now = this.clock.now();
    const expired = await scanAll(this.client, {
      TableName: this.table,
      FilterExpression: 'leavesAt <= :now',
      ExpressionAttributeValues: { ':now': now },
      ProjectionExpression: 'pk',
    });
    const keys = new Set(expired.flatMap((item) => str(item, 'pk') ?? []));
    let deleted = 0;
    for (const pk of keys) deleted += await this.sweep(pk);
    return deleted;
  }

  async settle(transaction: string, keep: string[]): Promise<void> {
    const kept = new Set(keep);
    const holds = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': holdPk(transaction) },
      ConsistentRead: true,
    });
    const byKey = new Map<string, Item[]>();
    for (const hold of holds) {
      const key = str(hold, 'key');
      if (key === undefined) continue;
      byKey.set(key, [...(byKey.get(key) ?? []), hold]);
    }
    // Holds that are all kept only need their index items removed: no head changes, one batch.
    const keptOnly = holds.filter((hold) => kept.has(str(hold, 'item') ?? ''));
    const released = new Map([...byKey].map(([pk, group]) => [pk, group.filter((hold) => !kept.has(str(hold, 'item') ?? ''))]));
    await Promise.all([
      deleteAll(this.client, this.table, keptOnly.flatMap((hold) => (str(hold, 'sk') === undefined ? [] : [{ pk: holdPk(transaction), sk: str(hold, 'sk') ?? '' }]))),
      ...[...released].map(async ([pk, group]) => {
        // 30 holds need at most 91 actions (3 each and the head).
        for (let i = 0; i < group.length; i += 30) await this.settleKey(pk, transaction, group.slice(i, i + 30), kept);
      }),
    ]);
  }

  private async settleKey(pk: string, transaction: string, holds: Item[], kept: Set<string>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const now = this.clock.now();
      const head = await this.readHead(pk);
      const live = head !== undefined && head.liveUntil > now;
      const counted = (at: number): boolean => live && head !== undefined && at > head.floor;
      const released = holds.filter((hold) => !kept.has(str(hold, 'item') ?? ''));
      const current = await getMany(
        this.client,
        this.table,
        released.map((hold) => ({ pk, sk: str(hold, 'member') !== undefined ? memberSk(str(hold, 'member') ?? '') : (str(hold, 'entry') ?? '') })),
      );
      const actions: Action[] = holds.map((hold) => ({ Delete: { TableName: this.table, Key: { pk: holdPk(transaction), sk: str(hold, 'sk') } } }));
      let delta = 0;
      for (const hold of released) {
        const at = requireNum(hold, 'at', 'counter hold');
        const member = str(hold, 'member');
        if (member === undefined) {
          const sk = str(hold, 'entry') ?? '';
          // Gone already (the key was reset): nothing left to release.
          if (!current.has(itemKey(pk, sk))) continue;
          actions.push({ Delete: { TableName: this.table, Key: { pk, sk }, ConditionExpression: 'attribute_exists(pk)' } });
          if (counted(at)) delta -= requireNum(hold, 'units', 'counter hold');
          continue;
        }
        // Another reservation saw the member since: the sighting is theirs now.
        if (num(current.get(itemKey(pk, memberSk(member))), 'lastSeen') !== at) continue;
        const previous = num(hold, 'previousSeen');
        actions.push({ Delete: { TableName: this.table, Key: { pk, sk: seenSk(at, member) } } });
        if (previous !== undefined && counted(previous)) {
          // The member was already counted before this hold: its earlier sighting comes back.
          const windowMs = requireNum(hold, 'windowMs', 'counter hold');
          actions.push({ Put: { TableName: this.table, Item: this.seenItem(pk, previous, member, windowMs) } });
          actions.push({
            Put: {
              TableName: this.table,
              Item: this.memberItem(pk, member, previous, windowMs),
              ConditionExpression: 'lastSeen = :at',
              ExpressionAttributeValues: { ':at': at },
            },
          });
        } else {
          actions.push({ Delete: { TableName: this.table, Key: { pk, sk: memberSk(member) }, ConditionExpression: 'lastSeen = :at', ExpressionAttributeValues: { ':at': at } } });
          if (counted(at)) delta -= 1;
        }
      }
      if (head !== undefined && actions.length > holds.length) {
        actions.push({
          Update: {
            TableName: this.table,
            Key: { pk, sk: HEAD },
            UpdateExpression: 'SET #sum = #sum + :delta, #version = :next',
            ConditionExpression: '#version = :version',
            ExpressionAttributeNames: { '#sum': 'sum', '#version': 'version' },
            ExpressionAttributeValues: { ':delta': delta, ':next': head.version + 1, ':version': head.version },
          },
        });
      }
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: actions }));
        return;
      } catch (error: unknown) {
        if (!isContention(error) || attempt >= MAX_ATTEMPTS) throw error;
        await backoff(attempt);
      }
    }
  }

  /**
   * The reserve/add path: reads every key, refuses (when `check`) if any limit would be exceeded,
   * else writes everything in one transaction; retries from the read when it lost a race.
   */
  private async commit(limits: WindowLimit[], distinct: DistinctLimit[], hold: Hold | undefined, check: boolean): Promise<{ ok: true; used: number[] } | { ok: false; refused: Refusal }> {
    for (let attempt = 0; ; attempt++) {
      const now = this.clock.now();
      const [windows, sightings] = await Promise.all([
        Promise.all(limits.map((limit) => this.readKey(keyPk(limit.key), 'window', limit.windowMs, now))),
        Promise.all(distinct.map((limit) => this.readSightings(limit, now))),
      ]);
      if (check) {
        for (const [i, limit] of limits.entries()) {
          const used = windows[i]?.used ?? 0;
          if (used + limit.units > limit.limit) {
            const entries = await this.liveEntries(keyPk(limit.key), limit.windowMs, now);
            return { ok: false, refused: { key: limit.key, limit: limit.limit, used, retryAt: retryTime(entries, limit.limit, limit.units, limit.windowMs, now) } };
          }
        }
        for (const [i, limit] of distinct.entries()) {
          const sighting = sightings[i];
          if (sighting === undefined) continue;
          const fresh = sighting.members.filter((member) => !member.known).length;
          if (sighting.state.used + fresh > limit.limit) return { ok: false, refused: await this.distinctRefusal(limit, sighting.state.used, fresh, now) };
        }
      }
      const actions: Action[] = [];
      const deletes: Array<{ pk: string; sk: string }> = [];
      for (const [i, limit] of limits.entries()) {
        const state = windows[i];
        if (state === undefined) continue;
        const sk = entrySk(now, randomUUID());
        actions.push(this.headUpdate(state, state.used + limit.units, now));
        actions.push({ Put: { TableName: this.table, Item: { pk: state.pk, sk, at: now, units: limit.units, leavesAt: now + limit.windowMs, expiresAt: ttlSeconds(now + 2 * limit.windowMs) } } });
        if (hold) actions.push(this.holdPut(hold, state.pk, sk, now, limit.windowMs, { entry: sk, units: limit.units }));
        deletes.push(...state.expired.map((expired) => ({ pk: state.pk, sk: expired })));
      }
      for (const [i, limit] of distinct.entries()) {
        const sighting = sightings[i];
        if (sighting === undefined) continue;
        const { state } = sighting;
        let count = state.used;
        const replaced = new Set<string>();
        for (const member of sighting.members) {
          if (!member.known) count += 1;
          if (member.lastSeen !== undefined) replaced.add(seenSk(member.lastSeen, member.name));
          actions.push({ Put: { TableName: this.table, Item: this.seenItem(state.pk, now, member.name, limit.windowMs) } });
          actions.push({
            Put: {
              TableName: this.table,
              Item: this.memberItem(state.pk, member.name, now, limit.windowMs),
              // The member read must still be true when the transaction commits.
              ConditionExpression: member.lastSeen === undefined ? 'attribute_not_exists(pk)' : 'lastSeen = :previous',
              ...(member.lastSeen === undefined ? {} : { ExpressionAttributeValues: { ':previous': member.lastSeen } }),
            },
          });
          if (hold) actions.push(this.holdPut(hold, state.pk, memberSk(member.name), now, limit.windowMs, { member: member.name, previousSeen: member.lastSeen }));
        }
        actions.push(this.headUpdate(state, count, now));
        // A sighting made in this same millisecond is put again, not deleted (one action per item).
        const putting = new Set(sighting.members.map((member) => seenSk(now, member.name)));
        for (const sk of new Set([...replaced, ...state.expired])) if (!putting.has(sk)) deletes.push({ pk: state.pk, sk });
      }
      if (actions.length > MAX_ACTIONS) throw new Error(`a reservation of ${actions.length} writes exceeds DynamoDB's ${MAX_ACTIONS} per transaction`);
      // Deleting expired entries is housekeeping: what does not fit waits for the next write or the TTL.
      for (const key of deletes.slice(0, MAX_ACTIONS - actions.length)) actions.push({ Delete: { TableName: this.table, Key: key } });
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: actions }));
        return { ok: true, used: windows.map((state) => state.used) };
      } catch (error: unknown) {
        if (!isContention(error) || attempt >= MAX_ATTEMPTS) throw error;
        await backoff(attempt);
      }
    }
  }

  /** The head and the entries that left the window (one strongly consistent Query). */
  private async readKey(pk: string, kind: 'window' | 'distinct', windowMs: number, now: number): Promise<KeyState> {
    const prefix = kind === 'window' ? 'E' : 'D';
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk <= :bound',
      ExpressionAttributeValues: { ':pk': pk, ':bound': upTo(prefix, now - windowMs) },
      ConsistentRead: true,
    });
    const head = parseHead(items.find((item) => str(item, 'sk') === HEAD));
    const live = head !== undefined && head.liveUntil > now;
    const expired = items.filter((item) => str(item, 'sk')?.startsWith(`${prefix}#`));
    const leftSinceFloor = live ? expired.filter((item) => requireNum(item, 'at', 'counter entry') > head.floor).reduce((sum, item) => sum + (num(item, 'units') ?? 1), 0) : 0;
    return {
      pk,
      windowMs,
      kind,
      version: head?.version,
      used: live ? head.sum - leftSinceFloor : 0,
      floor: Math.max(now - windowMs, live ? head.floor : -Infinity),
      liveUntil: live ? head.liveUntil : 0,
      expired: expired.flatMap((item) => str(item, 'sk') ?? []),
    };
  }

  private async readSightings(limit: DistinctLimit, now: number): Promise<{ state: KeyState; members: Array<{ name: string; lastSeen: number | undefined; known: boolean }> }> {
    const pk = keyPk(limit.key);
    const names = [...new Set(limit.members)];
    const [state, found] = await Promise.all([
      this.readKey(pk, 'distinct', limit.windowMs, now),
      getMany(this.client, this.table, names.map((name) => ({ pk, sk: memberSk(name) }))),
    ]);
    const members = names.map((name) => {
      const lastSeen = num(found.get(itemKey(pk, memberSk(name))), 'lastSeen');
      return { name, lastSeen, known: lastSeen !== undefined && lastSeen > now - limit.windowMs };
    });
    return { state, members };
  }

  private async readHead(pk: string): Promise<(Head & { windowMs: number; kind: string }) | undefined> {
    const result = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk, sk: HEAD }, ConsistentRead: true }));
    const head = parseHead(result.Item);
    if (head === undefined) return undefined;
    return { ...head, windowMs: num(result.Item, 'windowMs') ?? 0, kind: str(result.Item, 'kind') ?? 'window' };
  }

  /** Moves one key's head past its expired entries and deletes them; returns how many. */
  private async sweep(pk: string): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const now = this.clock.now();
      const head = await this.readHead(pk);
      if (head === undefined) {
        // Nothing is counted without a head: whatever left its window can simply go.
        const stale = await queryAll(this.client, {
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: 'leavesAt <= :now',
          ExpressionAttributeValues: { ':pk': pk, ':now': now },
          ConsistentRead: true,
        });
        await deleteAll(this.client, this.table, stale.flatMap((item) => (str(item, 'sk') === undefined ? [] : [{ pk, sk: str(item, 'sk') ?? '' }])));
        return stale.length;
      }
      const state = await this.readKey(pk, head.kind === 'distinct' ? 'distinct' : 'window', head.windowMs, now);
      if (state.expired.length === 0) return 0;
      const batch = state.expired.slice(0, MAX_ACTIONS - 1);
      const actions: Action[] = [this.headUpdate(state, state.used, now, false), ...batch.map((sk) => ({ Delete: { TableName: this.table, Key: { pk, sk } } }))];
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: actions }));
        return batch.length + (state.expired.length > batch.length ? await this.sweep(pk) : 0);
      } catch (error: unknown) {
        if (!isContention(error) || attempt >= MAX_ATTEMPTS) throw error;
        await backoff(attempt);
      }
    }
  }

  private headUpdate(state: KeyState, sum: number, now: number, extends_ = true): Action {
    const liveUntil = extends_ ? Math.max(state.liveUntil, now + state.windowMs) : state.liveUntil;
    return {
      Update: {
        TableName: this.table,
        Key: { pk: state.pk, sk: HEAD },
        UpdateExpression: 'SET #sum = :sum, #version = :next, #floor = :floor, liveUntil = :liveUntil, windowMs = :windowMs, kind = :kind, expiresAt = :expiresAt',
        ConditionExpression: state.version === undefined ? 'attribute_not_exists(pk)' : '#version = :version',
        ExpressionAttributeNames: { '#sum': 'sum', '#version': 'version', '#floor': 'floor' },
        ExpressionAttributeValues: {
          ':sum': sum,
          ':next': (state.version ?? 0) + 1,
          ':floor': state.floor,
          ':liveUntil': liveUntil,
          ':windowMs': state.windowMs,
          ':kind': state.kind,
          ':expiresAt': ttlSeconds(liveUntil + state.windowMs),
          ...(state.version === undefined ? {} : { ':version': state.version }),
        },
      },
    };
  }

  private seenItem(pk: string, at: number, member: string, windowMs: number): Item {
    return { pk, sk: seenSk(at, member), at, member, leavesAt: at + windowMs, expiresAt: ttlSeconds(at + 2 * windowMs) };
  }

  private memberItem(pk: string, member: string, lastSeen: number, windowMs: number): Item {
    return { pk, sk: memberSk(member), lastSeen, expiresAt: ttlSeconds(lastSeen + 2 * windowMs) };
  }

  private holdPut(hold: Hold, key: string, target: string, at: number, windowMs: number, fields: Item): Action {
    return {
      Put: {
        TableName: this.table,
        Item: { pk: holdPk(hold.transaction), sk: `${key}\u0000${target}`, key, item: hold.item, at, windowMs, expiresAt: ttlSeconds(at + 2 * windowMs), ...fields },
      },
    };
  }

  private async liveEntries(pk: string, windowMs: number, now: number): Promise<CounterEntry[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': pk, ':from': upTo('E', now - windowMs), ':to': 'E$' },
      ConsistentRead: true,
    });
    return items.map((item) => ({ at: requireNum(item, 'at', 'counter entry'), units: requireNum(item, 'units', 'counter entry') }));
  }

  private async distinctRefusal(limit: DistinctLimit, used: number, fresh: number, now: number): Promise<Refusal> {
    // Enough of the oldest members must leave the window for the fresh ones to fit.
    const mustLeave = used + fresh - limit.limit;
    let retryAt = now + limit.windowMs;
    if (fresh <= limit.limit) {
      const oldest = await queryAll(
        this.client,
        {
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': keyPk(limit.key), ':from': upTo('D', now - limit.windowMs), ':to': 'D$' },
          ConsistentRead: true,
          Limit: mustLeave,
        },
        mustLeave,
      );
      const pivot = oldest[mustLeave - 1];
      if (pivot) retryAt = requireNum(pivot, 'at', 'distinct sighting') + limit.windowMs;
    }
    return { key: limit.key, limit: limit.limit, used, retryAt };
  }
}

function parseHead(item: Item | undefined): Head | undefined {
  if (item === undefined) return undefined;
  const version = num(item, 'version');
  const sum = num(item, 'sum');
  const floor = num(item, 'floor');
  const liveUntil = num(item, 'liveUntil');
  if (version === undefined || sum === undefined || floor === undefined || liveUntil === undefined) return undefined;
  return { version, sum, floor, liveUntil };
}
