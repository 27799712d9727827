// CounterStore on DynamoDB: the same per-second buckets with a running sum as the SQLite store
// (core/counters.ts says why), made exact under concurrency with optimistic concurrency on a head
// item per key.
//
// Items of one counter key (partition `K#<key>`):
//   `#HEAD`                   {sum, version, floor, liveUntil, windowMs, kind, epoch}
//   `B#<at>`                  the units of one second of a window limit {at, units, leavesAt}
//   `D#<seen>#<member>`       a distinct member, filed under its latest sighting {at, member, leavesAt}
//   `M#<member>`              that member's sightings {seen, committed, held: {holdId: at}, version}
// and of one SMTP transaction holding reservations (partition `H#<transaction>`): one item per
// held use, so that settling finds them without a scan.
//
// `sum` counts the units of the buckets (or the members) newer than `floor`. A reserve reads the
// head and only the buckets that left the window since (one strongly consistent Query:
// `sk <= B#<now − window>$`, the head sorts first), so used = sum − their units, and commits in
// one TransactWriteItems: every head of the request updated on the condition that its version
// did not change, the bucket of this second incremented (ADD), the hold put, the expired buckets
// deleted. A busy key writes one bucket a second whatever its traffic, and a reserve reads at most
// the seconds that left since the previous one. A lost race cancels the whole transaction, which
// is read again and retried with jitter: concurrent reserves can never admit more than the limit.
// `liveUntil` is when the newest counted bucket leaves the window; a head past it counts nothing
// whatever its sum, so DynamoDB's TTL may delete heads and buckets in any order: a bucket's TTL
// (two windows after its second) passes only after every head that counted it has either
// subtracted it or gone past liveUntil. `epoch` is new with every head: a hold made before a
// reset (which deletes the head) is not given back to the counting that started afresh.
import { randomUUID } from 'node:crypto';
import { GetCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { bucketOf, type CounterBucket, type CounterStore, type DistinctLimit, type Hold, type Refusal, type ReserveOutcome, type WindowLimit } from '../../core/counters.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { backoff, deleteAll, getMany, isContention, itemKey, num, queryAll, requireNum, scanAll, str, ttlSeconds, type Item } from './dynamo-items.js';

type Action = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const HEAD = '#HEAD';
const MAX_ACTIONS = 100;
const MAX_ATTEMPTS = 200;
/** Holds settled per transaction: each takes at most four actions (hold, member, two sightings), plus the head. */
const HOLDS_PER_SETTLE = 20;

const pad = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');
const keyPk = (key: string): string => `K#${key}`;
const holdPk = (transaction: string): string => `H#${transaction}`;
const bucketSk = (at: number): string => `B#${pad(at)}`;
const seenSk = (at: number, member: string): string => `D#${pad(at)}#${member}`;
const memberSk = (member: string): string => `M#${member}`;
/** The last sort key of `prefix` items made at or before `at` ('$' sorts right after '#'). */
const upTo = (prefix: 'B' | 'D', at: number): string => `${prefix}#${pad(at)}$`;

interface Head {
  version: number;
  sum: number;
  floor: number;
  liveUntil: number;
  epoch: string;
}

/** What a reserve read about one key: its usage now, and what to write to move it forward. */
interface KeyState {
  pk: string;
  windowMs: number;
  kind: 'window' | 'distinct';
  /** Version to condition on; undefined when there is no head item. */
  version: number | undefined;
  epoch: string;
  used: number;
  floor: number;
  liveUntil: number;
  /** Buckets (or sightings) that left the window and can be deleted. */
  expired: string[];
}

/** A member's sightings, as its `M#` item holds them. */
interface Sightings {
  version: number | undefined;
  seen: number | undefined;
  committed: number | undefined;
  held: Record<string, number>;
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
    return (await this.readKey(keyPk(key), 'window', windowMs, this.clock.now())).used;
  }

  async buckets(key: string, windowMs: number): Promise<CounterBucket[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': keyPk(key), ':from': upTo('B', this.clock.now() - windowMs), ':to': 'B$' },
      ConsistentRead: true,
    });
    return items.map((item) => ({ at: requireNum(item, 'at', 'counter bucket'), units: requireNum(item, 'units', 'counter bucket') })).filter((bucket) => bucket.units > 0);
  }

  async countDistinct(key: string, windowMs: number): Promise<number> {
    return (await this.readKey(keyPk(key), 'distinct', windowMs, this.clock.now())).used;
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
   * Deletes the buckets and sightings that left their window (on AWS the table's TTL does this
   * too, later), moving each key's head past them in the same transaction; returns how many.
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
    // Kept units only need their hold items removed: no head changes, one batch. Sightings (kept
    // or not) and released units change their key, in one transaction per key.
    const keptUnits = holds.filter((hold) => str(hold, 'member') === undefined && kept.has(str(hold, 'item') ?? ''));
    const byKey = new Map<string, Item[]>();
    for (const hold of holds) {
      const key = str(hold, 'key');
      if (key === undefined || keptUnits.includes(hold)) continue;
      byKey.set(key, [...(byKey.get(key) ?? []), hold]);
    }
    await Promise.all([
      deleteAll(this.client, this.table, keptUnits.flatMap((hold) => (str(hold, 'sk') === undefined ? [] : [{ pk: holdPk(transaction), sk: str(hold, 'sk') ?? '' }]))),
      ...[...byKey].map(async ([pk, group]) => {
        for (let i = 0; i < group.length; i += HOLDS_PER_SETTLE) await this.settleKey(pk, transaction, group.slice(i, i + HOLDS_PER_SETTLE), kept);
      }),
    ]);
  }

  private async settleKey(pk: string, transaction: string, holds: Item[], kept: Set<string>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const now = this.clock.now();
      // The head and the items the holds name, read in parallel (one round trip).
      const [head, found] = await Promise.all([
        this.readHead(pk),
        getMany(
          this.client,
          this.table,
          holds.map((hold) => {
            const member = str(hold, 'member');
            return { pk, sk: member === undefined ? bucketSk(requireNum(hold, 'at', 'counter hold')) : memberSk(member) };
          }),
        ),
      ]);
      const live = head !== undefined && head.liveUntil > now;
      const counted = (at: number): boolean => live && head !== undefined && at > head.floor;
      // Holds made before a reset belong to counting that no longer exists.
      const current = holds.filter((hold) => head !== undefined && str(hold, 'epoch') === head.epoch);
      const members = [...new Set(current.flatMap((hold) => str(hold, 'member') ?? []))];
      const released = current.filter((hold) => str(hold, 'member') === undefined);
      const actions: Action[] = holds.map((hold) => ({ Delete: { TableName: this.table, Key: { pk: holdPk(transaction), sk: str(hold, 'sk') } } }));
      let delta = 0;
      // Whether the count changes or a sighting moves: then the head's version guards the change.
      let countChanges = false;
      // Released units, summed per bucket (a transaction takes one action per item).
      const perBucket = new Map<number, number>();
      for (const hold of released) {
        const at = requireNum(hold, 'at', 'counter hold');
        perBucket.set(at, (perBucket.get(at) ?? 0) + requireNum(hold, 'units', 'counter hold'));
      }
      for (const [at, units] of perBucket) {
        // Gone already (left the window and deleted): nothing left to give back.
        if (!found.has(itemKey(pk, bucketSk(at)))) continue;
        actions.push({
          Update: {
            TableName: this.table,
            Key: { pk, sk: bucketSk(at) },
            UpdateExpression: 'ADD units :less',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':less': -units },
          },
        });
        if (counted(at)) delta -= units;
        countChanges = true;
      }
      for (const member of members) {
        const item = found.get(itemKey(pk, memberSk(member)));
        if (item === undefined || head === undefined) continue;
        const windowMs = head.windowMs;
        const before = parseSightings(item);
        const after = { ...before, held: { ...before.held } };
        for (const hold of current.filter((candidate) => str(candidate, 'member') === member)) {
          const id = str(hold, 'holdId') ?? '';
          if (!(id in after.held)) continue;
          delete after.held[id];
          if (kept.has(str(hold, 'item') ?? '')) after.committed = Math.max(after.committed ?? -Infinity, requireNum(hold, 'at', 'counter hold'));
        }
        const latest = latestSighting(after, windowMs, now);
        const condition = { ConditionExpression: '#version = :version', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':version': before.version } };
        if (before.seen !== undefined && latest !== before.seen) {
          actions.push({ Delete: { TableName: this.table, Key: { pk, sk: seenSk(before.seen, member) } } });
          countChanges = true;
        }
        if (latest === undefined) {
          // No sighting left: the member leaves the count.
          actions.push({ Delete: { TableName: this.table, Key: { pk, sk: memberSk(member) }, ...condition } });
          if (before.seen !== undefined && counted(before.seen)) delta -= 1;
          continue;
        }
        if (latest !== before.seen) actions.push({ Put: { TableName: this.table, Item: this.seenItem(pk, latest, member, windowMs) } });
        actions.push({ Put: { TableName: this.table, Item: this.memberItem(pk, member, { ...after, seen: latest }, windowMs), ...condition } });
      }
      if (head !== undefined && countChanges) {
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
      const at = bucketOf(now);
      const [windows, sightings] = await Promise.all([
        Promise.all(limits.map((limit) => this.readKey(keyPk(limit.key), 'window', limit.windowMs, now))),
        Promise.all(distinct.map((limit) => this.readSightings(limit, now))),
      ]);
      if (check) {
        for (const [i, limit] of limits.entries()) {
          const used = windows[i]?.used ?? 0;
          if (used + limit.units > limit.limit) {
            return { ok: false, refused: { key: limit.key, limit: limit.limit, used, retryAt: await this.retryAt(limit, used, now) } };
          }
        }
        for (const [i, limit] of distinct.entries()) {
          const sighting = sightings[i];
          if (sighting === undefined) continue;
          const fresh = sighting.members.filter((member) => !member.known).length;
          if (sighting.state.used + fresh > limit.limit) return { ok: false, refused: await this.distinctRefusal(limit, sighting.state.used, fresh, now) };
        }
      }
      const holdId = randomUUID();
      const actions: Action[] = [];
      const deletes: Array<{ pk: string; sk: string }> = [];
      for (const [i, limit] of limits.entries()) {
        const state = windows[i];
        if (state === undefined) continue;
        actions.push(this.headUpdate(state, state.used + limit.units, now));
        actions.push({
          Update: {
            TableName: this.table,
            Key: { pk: state.pk, sk: bucketSk(at) },
            UpdateExpression: 'ADD units :units SET #at = :at, leavesAt = :leavesAt, expiresAt = :expiresAt',
            ExpressionAttributeNames: { '#at': 'at' },
            ExpressionAttributeValues: { ':units': limit.units, ':at': at, ':leavesAt': at + limit.windowMs, ':expiresAt': ttlSeconds(at + 2 * limit.windowMs) },
          },
        });
        if (hold) actions.push(this.holdPut(hold, holdId, state, at, { units: limit.units }));
        deletes.push(...state.expired.map((expired) => ({ pk: state.pk, sk: expired })));
      }
      for (const [i, limit] of distinct.entries()) {
        const sighting = sightings[i];
        if (sighting === undefined) continue;
        const { state } = sighting;
        let count = state.used;
        const moved = new Set<string>();
        for (const member of sighting.members) {
          if (!member.known) count += 1;
          const before = member.sightings;
          if (before.seen !== undefined && before.seen !== at) moved.add(seenSk(before.seen, member.name));
          const cutoff = now - limit.windowMs;
          const held = Object.fromEntries(Object.entries(before.held).filter(([, heldAt]) => heldAt > cutoff));
          if (hold) held[holdId] = at;
          const committed = hold ? (before.committed !== undefined && before.committed > cutoff ? before.committed : undefined) : at;
          actions.push({ Put: { TableName: this.table, Item: this.seenItem(state.pk, at, member.name, limit.windowMs) } });
          actions.push({
            Put: {
              TableName: this.table,
              Item: this.memberItem(state.pk, member.name, { version: before.version, seen: at, committed, held }, limit.windowMs),
              // The member read must still be true when the transaction commits.
              ConditionExpression: before.version === undefined ? 'attribute_not_exists(pk)' : '#version = :version',
              ...(before.version === undefined ? {} : { ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':version': before.version } }),
            },
          });
          if (hold) actions.push(this.holdPut(hold, holdId, state, at, { member: member.name }));
        }
        actions.push(this.headUpdate(state, count, now));
        // A sighting filed under this same second is put again, not deleted (one action per item).
        const putting = new Set(sighting.members.map((member) => seenSk(at, member.name)));
        for (const sk of new Set([...moved, ...state.expired])) if (!putting.has(sk)) deletes.push({ pk: state.pk, sk });
      }
      if (actions.length > MAX_ACTIONS) throw new Error(`a reservation of ${actions.length} writes exceeds DynamoDB's ${MAX_ACTIONS} per transaction`);
      // Deleting expired buckets is housekeeping: what does not fit waits for the next write or the TTL.
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

  /** The head and the buckets (or sightings) that left the window (one strongly consistent Query). */
  private async readKey(pk: string, kind: 'window' | 'distinct', windowMs: number, now: number): Promise<KeyState> {
    const prefix = kind === 'window' ? 'B' : 'D';
    const items = await queryAll(this.client, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk <= :bound',
      ExpressionAttributeValues: { ':pk': pk, ':bound': upTo(prefix, now - windowMs) },
      ConsistentRead: true,
    });
    const head = parseHead(items.find((item) => str(item, 'sk') === HEAD));
    const live = head !== undefined && head.liveUntil > now;
    const expired = items.filter((item) => str(item, 'sk')?.startsWith(`${prefix}#`));
    const leftSinceFloor = live ? expired.filter((item) => requireNum(item, 'at', 'counter bucket') > head.floor).reduce((sum, item) => sum + (num(item, 'units') ?? 1), 0) : 0;
    return {
      pk,
      windowMs,
      kind,
      version: head?.version,
      epoch: head?.epoch ?? randomUUID(),
      used: live ? head.sum - leftSinceFloor : 0,
      floor: Math.max(now - windowMs, live ? head.floor : -Infinity),
      liveUntil: live ? head.liveUntil : 0,
      expired: expired.flatMap((item) => str(item, 'sk') ?? []),
    };
  }

  private async readSightings(limit: DistinctLimit, now: number): Promise<{ state: KeyState; members: Array<{ name: string; sightings: Sightings; known: boolean }> }> {
    const pk = keyPk(limit.key);
    const names = [...new Set(limit.members)];
    const [state, found] = await Promise.all([
      this.readKey(pk, 'distinct', limit.windowMs, now),
      getMany(this.client, this.table, names.map((name) => ({ pk, sk: memberSk(name) }))),
    ]);
    const members = names.map((name) => {
      const item = found.get(itemKey(pk, memberSk(name)));
      const sightings = item === undefined ? { version: undefined, seen: undefined, committed: undefined, held: {} } : parseSightings(item);
      return { name, sightings, known: sightings.seen !== undefined && sightings.seen > now - limit.windowMs };
    });
    return { state, members };
  }

  private async readHead(pk: string): Promise<(Head & { windowMs: number; kind: string }) | undefined> {
    const result = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk, sk: HEAD }, ConsistentRead: true }));
    const head = parseHead(result.Item);
    if (head === undefined) return undefined;
    return { ...head, windowMs: num(result.Item, 'windowMs') ?? 0, kind: str(result.Item, 'kind') ?? 'window' };
  }

  /** Moves one key's head past its expired buckets and deletes them; returns how many. */
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
    const liveUntil = extends_ ? Math.max(state.liveUntil, bucketOf(now) + state.windowMs) : state.liveUntil;
    return {
      Update: {
        TableName: this.table,
        Key: { pk: state.pk, sk: HEAD },
        UpdateExpression: 'SET #sum = :sum, #version = :next, #floor = :floor, liveUntil = :liveUntil, windowMs = :windowMs, kind = :kind, epoch = :epoch, expiresAt = :expiresAt',
        ConditionExpression: state.version === undefined ? 'attribute_not_exists(pk)' : '#version = :version',
        ExpressionAttributeNames: { '#sum': 'sum', '#version': 'version', '#floor': 'floor' },
        ExpressionAttributeValues: {
          ':sum': sum,
          ':next': (state.version ?? 0) + 1,
          ':floor': state.floor,
          ':liveUntil': liveUntil,
          ':windowMs': state.windowMs,
          ':kind': state.kind,
          ':epoch': state.epoch,
          ':expiresAt': ttlSeconds(liveUntil + state.windowMs),
          ...(state.version === undefined ? {} : { ':version': state.version }),
        },
      },
    };
  }

  private seenItem(pk: string, at: number, member: string, windowMs: number): Item {
    return { pk, sk: seenSk(at, member), at, member, leavesAt: at + windowMs, expiresAt: ttlSeconds(at + 2 * windowMs) };
  }

  private memberItem(pk: string, member: string, sightings: Sightings, windowMs: number): Item {
    const seen = sightings.seen ?? 0;
    return {
      pk,
      sk: memberSk(member),
      seen,
      ...(sightings.committed === undefined ? {} : { committed: sightings.committed }),
      held: sightings.held,
      version: (sightings.version ?? 0) + 1,
      expiresAt: ttlSeconds(seen + 2 * windowMs),
    };
  }

  private holdPut(hold: Hold, holdId: string, state: KeyState, at: number, fields: Item): Action {
    return {
      Put: {
        TableName: this.table,
        Item: {
          pk: holdPk(hold.transaction),
          // One hold item per key and member of a reservation (a request may name several members).
          sk: `${state.pk}\u0000${holdId}\u0000${str(fields, 'member') ?? ''}`,
          key: state.pk,
          item: hold.item,
          holdId,
          epoch: state.epoch,
          at,
          expiresAt: ttlSeconds(at + 2 * state.windowMs),
          ...fields,
        },
      },
    };
  }

  /** When `limit.units` fit again: read the live buckets oldest first, a page at a time, until enough have left. */
  private async retryAt(limit: WindowLimit, used: number, now: number): Promise<number> {
    let left = used;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': keyPk(limit.key), ':from': upTo('B', now - limit.windowMs), ':to': 'B$' },
          ConsistentRead: true,
          Limit: 100,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        left -= requireNum(item, 'units', 'counter bucket');
        if (left + limit.units <= limit.limit) return requireNum(item, 'at', 'counter bucket') + limit.windowMs;
      }
      start = page.LastEvaluatedKey;
    } while (start);
    // The attempt alone is larger than the limit: it never fits; say "a full window from now".
    return bucketOf(now) + limit.windowMs;
  }

  private async distinctRefusal(limit: DistinctLimit, used: number, fresh: number, now: number): Promise<Refusal> {
    // Enough of the oldest members must leave the window for the fresh ones to fit.
    const mustLeave = used + fresh - limit.limit;
    let retryAt = bucketOf(now) + limit.windowMs;
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
  return { version, sum, floor, liveUntil, epoch: str(item, 'epoch') ?? '' };
}

function parseSightings(item: Item): Sightings {
  const held: Record<string, number> = {};
  const map = item['held'];
  if (typeof map === 'object' && map !== null) {
    for (const [id, at] of Object.entries(map)) if (typeof at === 'number') held[id] = at;
  }
  return { version: num(item, 'version'), seen: num(item, 'seen'), committed: num(item, 'committed'), held };
}

/** A member's latest sighting still in the window (settled or held), if any. */
function latestSighting(sightings: Sightings, windowMs: number, now: number): number | undefined {
  const candidates = [sightings.committed, ...Object.values(sightings.held)].filter((at): at is number => at !== undefined && at + windowMs > now);
  return candidates.length === 0 ? undefined : Math.max(...candidates);
}
