// Tenants, domains and outgoing users on DynamoDB (table `config`). Every record is its own
// partition (`TENANT#<id>`, `DOMAIN#<name>`, `USER#<id>`); what must be unique claims an item of
// its own in the same transaction (`TENANTNAME#<name>`, `LOGIN#<identity>`; a domain's item is its
// claim), conditioned on not existing, so two admins creating the same name at once cannot both
// succeed. Lookups on the hot path are GetItems: a login (AUTH) reads `LOGIN#` then `USER#`.
// Lists go through two small indexes: `byParent` (a tenant's domains and users) and `byKind`
// (all tenants, all domains, the users of one kind: the ingress's IP-user list is one Query).
// Deleting a tenant deletes its domains, users and their login claims first, then the tenant.
// An IP user is also filed under its network (`IPNET#<bucket>` / `<user id>`, a copy of the user
// item written in the same transaction as the user; see core/ip-user-lookup.ts), so the ingress
// finds the IP user of a client address with two keyed Queries, never a list of every IP user.
//
// Pending domain claims (a tenant's wish to serve a domain it has yet to prove) are items
// `DOMAINCLAIM#<name>` / `T#<tenant>`: every claim on one name shares a partition, so verifying
// reads them all with one strongly consistent Query. A claim is put on the condition that
// `DOMAIN#<name>` does not exist; verifying puts `DOMAIN#<name>` (conditioned on not existing)
// and deletes every claim on the name in one transaction: the first to verify wins, the others'
// claims go with it. A claim written between that Query and the transaction cannot have seen the
// domain yet, so it is swept right after; one that comes later is refused by its condition.
import { randomUUID } from 'node:crypto';
import { GetCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { ceilingsSchema, type Ceilings } from '../../core/ceilings.js';
import type { DomainClaim } from '../../core/domains.js';
import { matchIpUser, userIdFor, type Domain, type IdentityKind, type OutgoingUser, type Tenant } from '../../core/identity.js';
import { settingOverridesSchema, type SettingOverrides } from '../../core/settings.js';
import { ConflictError, NotFoundError, type ConfigStore } from '../../core/stores.js';
import { systemClock, type Clock } from '../../core/ports.js';
import { ipAddressBuckets, ipRangeBucket } from '../../core/ip-user-lookup.js';
import { backoff, bool, deleteAll, isContention, queryAll, requireNum, requireStr, str, type Item } from './dynamo-items.js';

type Action = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const ONE = '#';
const KINDS: IdentityKind[] = ['mailbox', 'domain', 'ip'];

function parseSettings(text: string | undefined): SettingOverrides {
  let value: unknown = {};
  try {
    value = JSON.parse(text ?? '{}');
  } catch {
    return {};
  }
  const parsed = settingOverridesSchema.safeParse(value);
  // Settings are validated on write; an item that no longer parses (a key renamed) keeps what still does.
  return parsed.success ? parsed.data : {};
}

function parseCeilings(text: string | undefined): Ceilings {
  let value: unknown = {};
  try {
    value = JSON.parse(text ?? '{}');
  } catch {
    return {};
  }
  const parsed = ceilingsSchema.safeParse(value);
  return parsed.success ? parsed.data : {};
}

const claimPk = (name: string): string => `DOMAINCLAIM#${name}`;
const claimSk = (tenantId: string): string => `T#${tenantId}`;

function kindOf(value: string | undefined): IdentityKind {
  const kind = KINDS.find((candidate) => candidate === value);
  if (!kind) throw new Error(`user item has an unknown kind "${value}"`);
  return kind;
}

const toTenant = (item: Item): Tenant => ({
  id: requireStr(item, 'id', 'tenant'),
  name: requireStr(item, 'name', 'tenant'),
  settings: parseSettings(str(item, 'settings')),
  ceilings: parseCeilings(str(item, 'ceilings')),
  suspended: bool(item, 'suspended') ?? false,
  createdAt: requireNum(item, 'createdAt', 'tenant'),
});

const toClaim = (item: Item): DomainClaim => ({
  name: requireStr(item, 'name', 'domain claim'),
  tenantId: requireStr(item, 'tenantId', 'domain claim'),
  token: requireStr(item, 'token', 'domain claim'),
  createdAt: requireNum(item, 'createdAt', 'domain claim'),
});

const toDomain = (item: Item): Domain => ({ name: requireStr(item, 'name', 'domain'), tenantId: requireStr(item, 'tenantId', 'domain'), createdAt: requireNum(item, 'createdAt', 'domain') });

const toUser = (item: Item): OutgoingUser => ({
  id: requireStr(item, 'id', 'user'),
  tenantId: requireStr(item, 'tenantId', 'user'),
  kind: kindOf(str(item, 'kind')),
  identity: requireStr(item, 'identity', 'user'),
  domain: str(item, 'domain') ?? null,
  passwordHash: str(item, 'passwordHash') ?? null,
  settings: parseSettings(str(item, 'settings')),
  createdAt: requireNum(item, 'createdAt', 'user'),
});

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Which item's condition failed in a cancelled transaction (DynamoDB lists a reason per action). */
function failedActions(error: unknown): number[] {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return [];
  const reasons: unknown = Reflect.get(error, 'CancellationReasons');
  if (!Array.isArray(reasons)) return [];
  return reasons.flatMap((reason: unknown, index) => (typeof reason === 'object' && reason !== null && Reflect.get(reason, 'Code') === 'ConditionalCheckFailed' ? [index] : []));
}

export interface DynamoDbConfigStoreOptions {
  client: DynamoDBDocumentClient;
  table: string;
  clock?: Clock;
}

export class DynamoDbConfigStore implements ConfigStore {
  private readonly client: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly clock: Clock;

  constructor(options: DynamoDbConfigStoreOptions) {
    this.client = options.client;
    this.table = options.table;
    this.clock = options.clock ?? systemClock;
  }

  private async getItem(pk: string): Promise<Item | undefined> {
    return (await this.client.send(new GetCommand({ TableName: this.table, Key: { pk, sk: ONE }, ConsistentRead: true }))).Item;
  }

  private put(item: Item, unique = false): Action {
    return { Put: { TableName: this.table, Item: { sk: ONE, ...item }, ...(unique ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}) } };
  }

  private remove(pk: string): Action {
    return { Delete: { TableName: this.table, Key: { pk, sk: ONE } } };
  }

  async createTenant(name: string, settings: SettingOverrides = {}): Promise<Tenant> {
    const tenant: Tenant = { id: randomUUID(), name, settings: settingOverridesSchema.parse(settings), ceilings: {}, suspended: false, createdAt: this.clock.now() };
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            this.put({ pk: `TENANTNAME#${name}`, tenantId: tenant.id }, true),
            this.put({ pk: `TENANT#${tenant.id}`, ...tenant, settings: JSON.stringify(tenant.settings), ceilings: JSON.stringify(tenant.ceilings), gsi2pk: 'TENANTS', gsi2sk: name }, true),
          ],
        }),
      );
    } catch (error: unknown) {
      if (failedActions(error).length > 0) throw new ConflictError(`tenant "${name}" already exists`);
      throw error;
    }
    return tenant;
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    const item = await this.getItem(`TENANT#${id}`);
    return item && toTenant(item);
  }

  async getTenantByName(name: string): Promise<Tenant | undefined> {
    const claim = await this.getItem(`TENANTNAME#${name}`);
    const id = str(claim, 'tenantId');
    return id === undefined ? undefined : this.getTenant(id);
  }

  async listTenants(): Promise<Tenant[]> {
    const items = await queryAll(this.client, { TableName: this.table, IndexName: 'byKind', KeyConditionExpression: 'gsi2pk = :kind', ExpressionAttributeValues: { ':kind': 'TENANTS' } });
    return items.map(toTenant).sort((a, b) => byText(a.name, b.name));
  }

  async updateTenant(id: string, changes: { settings?: SettingOverrides; ceilings?: Ceilings; suspended?: boolean }): Promise<Tenant> {
    const current = await this.getTenant(id);
    if (!current) throw new NotFoundError(`no tenant ${id}`);
    const settings = changes.settings ? settingOverridesSchema.parse(changes.settings) : current.settings;
    const ceilings = changes.ceilings ? ceilingsSchema.parse(changes.ceilings) : current.ceilings;
    const suspended = changes.suspended ?? current.suspended;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `TENANT#${id}`, sk: ONE },
          UpdateExpression: 'SET settings = :settings, ceilings = :ceilings, suspended = :suspended',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':settings': JSON.stringify(settings), ':ceilings': JSON.stringify(ceilings), ':suspended': suspended },
        }),
      );
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') throw new NotFoundError(`no tenant ${id}`);
      throw error;
    }
    return { ...current, settings, ceilings, suspended };
  }

  async deleteTenant(id: string): Promise<void> {
    const tenant = await this.getTenant(id);
    if (!tenant) throw new NotFoundError(`no tenant ${id}`);
    // What belongs to the tenant goes first: an interrupted delete leaves a tenant to delete again, never orphans.
    for (const user of await this.listUsers({ tenantId: id })) await this.deleteUser(user.id);
    for (const domain of await this.listDomains(id)) await this.removeDomain(id, domain.name);
    const claims = await this.listDomainClaims(id);
    await deleteAll(this.client, this.table, claims.map((claim) => ({ pk: claimPk(claim.name), sk: claimSk(id) })));
    await this.client.send(new TransactWriteCommand({ TransactItems: [this.remove(`TENANT#${id}`), this.remove(`TENANTNAME#${tenant.name}`)] }));
  }

  private domainPut(domain: Domain): Action {
    return this.put({ pk: `DOMAIN#${domain.name}`, ...domain, gsi1pk: `DOMAINS#${domain.tenantId}`, gsi1sk: domain.name, gsi2pk: 'DOMAINS', gsi2sk: domain.name }, true);
  }

  /** Every tenant's pending claim on the name (one partition). */
  private async claimsOn(name: string): Promise<Item[]> {
    return queryAll(this.client, { TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': claimPk(name) }, ConsistentRead: true });
  }

  /** Deletes what claims on the name are left once it is served (see the top of the file). */
  private async sweepClaims(name: string): Promise<void> {
    const left = await this.claimsOn(name);
    await deleteAll(this.client, this.table, left.map((item) => ({ pk: claimPk(name), sk: requireStr(item, 'sk', 'domain claim') })));
  }

  /**
   * Puts the domain and deletes the claims on it in one transaction; `own` is the claim that
   * must still exist (verify), checked by its delete's condition. DynamoDB takes at most 100
   * actions a transaction: claims beyond that are swept after.
   */
  private async serveDomain(domain: Domain, own?: string): Promise<'served' | 'taken' | 'no-claim'> {
    // A transaction that only collided with another (two tenants verifying at once) is tried
    // again: the second try finds the domain served, or the claims changed.
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.tryServeDomain(domain, own);
      if (outcome !== 'collided') return outcome;
      if (attempt >= 5) throw new Error(`adding domain "${domain.name}" kept colliding with other writes; try again`);
      await backoff(attempt);
    }
  }

  private async tryServeDomain(domain: Domain, own?: string): Promise<'served' | 'taken' | 'no-claim' | 'collided'> {
    const claims = (await this.claimsOn(domain.name)).flatMap((item) => {
      const sk = str(item, 'sk');
      return sk === undefined ? [] : [sk];
    });
    const others = claims.filter((sk) => sk !== own).slice(0, own === undefined ? 99 : 98);
    const deletes: Action[] = others.map((sk) => ({ Delete: { TableName: this.table, Key: { pk: claimPk(domain.name), sk } } }));
    if (own !== undefined) {
      deletes.unshift({ Delete: { TableName: this.table, Key: { pk: claimPk(domain.name), sk: own }, ConditionExpression: 'attribute_exists(pk)' } });
    }
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: [this.domainPut(domain), ...deletes] }));
    } catch (error: unknown) {
      const failed = failedActions(error);
      if (failed.includes(0)) return 'taken';
      if (failed.includes(1) && own !== undefined) return 'no-claim';
      if (isContention(error)) return 'collided';
      throw error;
    }
    await this.sweepClaims(domain.name);
    return 'served';
  }

  async addDomain(tenantId: string, name: string): Promise<Domain> {
    const domain: Domain = { name, tenantId, createdAt: this.clock.now() };
    if ((await this.serveDomain(domain)) === 'taken') throw new ConflictError(`domain "${name}" is already served`);
    return domain;
  }

  async claimDomain(tenantId: string, name: string, token: string): Promise<DomainClaim> {
    const claim: DomainClaim = { name, tenantId, token, createdAt: this.clock.now() };
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { ConditionCheck: { TableName: this.table, Key: { pk: `DOMAIN#${name}`, sk: ONE }, ConditionExpression: 'attribute_not_exists(pk)' } },
            {
              Put: {
                TableName: this.table,
                Item: { pk: claimPk(name), sk: claimSk(tenantId), ...claim, gsi1pk: `CLAIMS#${tenantId}`, gsi1sk: name },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        }),
      );
    } catch (error: unknown) {
      const failed = failedActions(error);
      if (failed.includes(0)) {
        const served = await this.getDomain(name);
        if (served?.tenantId === tenantId) throw new ConflictError(`domain "${name}" is already one of this tenant's verified domains`);
        throw new ConflictError(`domain "${name}" is already served and verified`);
      }
      if (failed.includes(1)) throw new ConflictError(`domain "${name}" is already pending for this tenant; publish its TXT record and verify it`);
      throw error;
    }
    return claim;
  }

  async getDomainClaim(tenantId: string, name: string): Promise<DomainClaim | undefined> {
    const item = (await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: claimPk(name), sk: claimSk(tenantId) }, ConsistentRead: true }))).Item;
    return item && toClaim(item);
  }

  async listDomainClaims(tenantId: string): Promise<DomainClaim[]> {
    const items = await queryAll(this.client, { TableName: this.table, IndexName: 'byParent', KeyConditionExpression: 'gsi1pk = :key', ExpressionAttributeValues: { ':key': `CLAIMS#${tenantId}` } });
    return items.map(toClaim).sort((a, b) => byText(a.name, b.name));
  }

  async verifyDomainClaim(tenantId: string, name: string): Promise<Domain> {
    const domain: Domain = { name, tenantId, createdAt: this.clock.now() };
    const served = await this.getDomain(name);
    const outcome = served && served.tenantId !== tenantId ? 'taken' : await this.serveDomain(domain, claimSk(tenantId));
    if (outcome === 'taken') {
      // The first to prove it won; a claim left behind (e.g. added by the operator) goes now.
      await this.sweepClaims(name);
      throw new ConflictError(`domain "${name}" was proven by another tenant first; this claim is dropped`);
    }
    if (outcome === 'no-claim') throw new NotFoundError(`no pending domain ${name}`);
    return domain;
  }

  async removeDomainClaim(tenantId: string, name: string): Promise<void> {
    try {
      await this.client.send(
        new TransactWriteCommand({ TransactItems: [{ Delete: { TableName: this.table, Key: { pk: claimPk(name), sk: claimSk(tenantId) }, ConditionExpression: 'attribute_exists(pk)' } }] }),
      );
    } catch (error: unknown) {
      if (failedActions(error).length > 0) throw new NotFoundError(`no pending domain ${name}`);
      throw error;
    }
  }

  async getDomain(name: string): Promise<Domain | undefined> {
    const item = await this.getItem(`DOMAIN#${name}`);
    return item && toDomain(item);
  }

  async listDomains(tenantId?: string): Promise<Domain[]> {
    const items = await queryAll(this.client, {
      TableName: this.table,
      IndexName: tenantId === undefined ? 'byKind' : 'byParent',
      KeyConditionExpression: tenantId === undefined ? 'gsi2pk = :key' : 'gsi1pk = :key',
      ExpressionAttributeValues: { ':key': tenantId === undefined ? 'DOMAINS' : `DOMAINS#${tenantId}` },
    });
    return items.map(toDomain).sort((a, b) => byText(a.name, b.name));
  }

  async removeDomain(tenantId: string, name: string): Promise<void> {
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [{ Delete: { TableName: this.table, Key: { pk: `DOMAIN#${name}`, sk: ONE }, ConditionExpression: 'tenantId = :tenant', ExpressionAttributeValues: { ':tenant': tenantId } } }],
        }),
      );
    } catch (error: unknown) {
      if (failedActions(error).length > 0) throw new NotFoundError(`no domain ${name}`);
      throw error;
    }
  }

  async createUser(input: { tenantId: string; kind: IdentityKind; identity: string; domain: string | null; passwordHash: string | null; settings?: SettingOverrides }): Promise<OutgoingUser> {
    const user: OutgoingUser = {
      id: userIdFor(input.tenantId, input.identity),
      tenantId: input.tenantId,
      kind: input.kind,
      identity: input.identity,
      domain: input.domain,
      passwordHash: input.passwordHash,
      settings: settingOverridesSchema.parse(input.settings ?? {}),
      createdAt: this.clock.now(),
    };
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [this.put({ pk: `LOGIN#${user.identity}`, userId: user.id, kind: user.kind }, true), this.put(this.userItem(user), true), ...this.ipNetPut(user)],
        }),
      );
    } catch (error: unknown) {
      if (failedActions(error).length > 0) throw new ConflictError(`user "${input.identity}" already exists`);
      throw error;
    }
    return user;
  }

  private userItem(user: OutgoingUser): Item {
    return {
      pk: `USER#${user.id}`,
      ...user,
      settings: JSON.stringify(user.settings),
      gsi1pk: `USERS#${user.tenantId}`,
      gsi1sk: user.identity,
      gsi2pk: `USERKIND#${user.kind}`,
      gsi2sk: user.identity,
    };
  }

  /** The copy of an IP user filed under its network (nothing for other users). */
  private ipNetPut(user: OutgoingUser): Action[] {
    if (user.kind !== 'ip') return [];
    const { pk: _pk, gsi1pk: _g1, gsi1sk: _g1s, gsi2pk: _g2, gsi2sk: _g2s, ...copy } = this.userItem(user);
    return [{ Put: { TableName: this.table, Item: { ...copy, pk: `IPNET#${ipRangeBucket(user.identity)}`, sk: user.id } } }];
  }

  private ipNetRemove(user: OutgoingUser): Action[] {
    return user.kind === 'ip' ? [{ Delete: { TableName: this.table, Key: { pk: `IPNET#${ipRangeBucket(user.identity)}`, sk: user.id } } }] : [];
  }

  async findIpUser(ip: string): Promise<OutgoingUser | undefined> {
    const buckets = ipAddressBuckets(ip);
    const filed = await Promise.all(
      buckets.map((bucket) => queryAll(this.client, { TableName: this.table, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `IPNET#${bucket}` }, ConsistentRead: true })),
    );
    return matchIpUser(filed.flat().map(toUser), ip);
  }

  async getUser(id: string): Promise<OutgoingUser | undefined> {
    const item = await this.getItem(`USER#${id}`);
    return item && toUser(item);
  }

  async findUserByLogin(identity: string): Promise<OutgoingUser | undefined> {
    const claim = await this.getItem(`LOGIN#${identity}`);
    const id = str(claim, 'userId');
    if (id === undefined || str(claim, 'kind') === 'ip') return undefined;
    return this.getUser(id);
  }

  async listUsers(filter: { tenantId?: string; kind?: IdentityKind } = {}): Promise<OutgoingUser[]> {
    const query = (index: 'byParent' | 'byKind', key: string) =>
      queryAll(this.client, {
        TableName: this.table,
        IndexName: index,
        KeyConditionExpression: index === 'byParent' ? 'gsi1pk = :key' : 'gsi2pk = :key',
        ExpressionAttributeValues: { ':key': key },
      });
    const items =
      filter.tenantId !== undefined
        ? await query('byParent', `USERS#${filter.tenantId}`)
        : (await Promise.all((filter.kind ? [filter.kind] : KINDS).map((kind) => query('byKind', `USERKIND#${kind}`)))).flat();
    return items
      .map(toUser)
      .filter((user) => filter.kind === undefined || user.kind === filter.kind)
      .sort((a, b) => byText(a.identity, b.identity));
  }

  async updateUser(id: string, changes: { settings?: SettingOverrides; passwordHash?: string | null }): Promise<OutgoingUser> {
    const current = await this.getUser(id);
    if (!current) throw new NotFoundError(`no user ${id}`);
    const next: OutgoingUser = {
      ...current,
      settings: changes.settings ? settingOverridesSchema.parse(changes.settings) : current.settings,
      passwordHash: changes.passwordHash !== undefined ? changes.passwordHash : current.passwordHash,
    };
    try {
      await this.client.send(
        new TransactWriteCommand({ TransactItems: [{ Put: { TableName: this.table, Item: { sk: ONE, ...this.userItem(next) }, ConditionExpression: 'attribute_exists(pk)' } }, ...this.ipNetPut(next)] }),
      );
    } catch (error: unknown) {
      if (failedActions(error).length > 0) throw new NotFoundError(`no user ${id}`);
      throw error;
    }
    return next;
  }

  async deleteUser(id: string): Promise<void> {
    const user = await this.getUser(id);
    if (!user) throw new NotFoundError(`no user ${id}`);
    await this.client.send(new TransactWriteCommand({ TransactItems: [this.remove(`USER#${id}`), this.remove(`LOGIN#${user.identity}`), ...this.ipNetRemove(user)] }));
  }
}
