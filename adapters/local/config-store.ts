// Tenants, domains and outgoing users in SQLite.
import { randomUUID } from 'node:crypto';
import { ceilingsSchema, type Ceilings } from '../../core/ceilings.js';
import type { DomainClaim } from '../../core/domains.js';
import { matchIpUser, userIdFor, type Domain, type IdentityKind, type OutgoingUser, type Tenant } from '../../core/identity.js';
import { settingOverridesSchema, type SettingOverrides } from '../../core/settings.js';
import { ConflictError, NotFoundError, type ConfigStore } from '../../core/stores.js';
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { immediate, type Db } from './sqlite.js';
import { ipAddressBuckets, ipRangeBucket } from '../../core/ip-user-lookup.js';

interface TenantRow {
  id: string;
  name: string;
  settings: string;
  ceilings: string;
  suspended: number;
  created_at: number;
}
interface ClaimRow {
  name: string;
  tenant_id: string;
  token: string;
  created_at: number;
}
interface DomainRow {
  name: string;
  tenant_id: string;
  created_at: number;
}
interface UserRow {
  id: string;
  tenant_id: string;
  kind: IdentityKind;
  identity: string;
  domain: string | null;
  password_hash: string | null;
  settings: string;
  created_at: number;
}

// Kept here too: callers and tests import it from the store that uses it.
export { userIdFor };

function parseSettings(text: string): SettingOverrides {
  const parsed = settingOverridesSchema.safeParse(JSON.parse(text));
  // Settings are validated on write; a row that no longer parses (a key renamed) keeps what still does.
  return parsed.success ? parsed.data : {};
}

function parseCeilings(text: string): Ceilings {
  const parsed = ceilingsSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : {};
}

const toClaim = (row: ClaimRow): DomainClaim => ({ name: row.name, tenantId: row.tenant_id, token: row.token, createdAt: row.created_at });

const toTenant = (row: TenantRow): Tenant => ({
  id: row.id,
  name: row.name,
  settings: parseSettings(row.settings),
  ceilings: parseCeilings(row.ceilings),
  suspended: row.suspended === 1,
  createdAt: row.created_at,
});
const toDomain = (row: DomainRow): Domain => ({ name: row.name, tenantId: row.tenant_id, createdAt: row.created_at });
const toUser = (row: UserRow): OutgoingUser => ({
  id: row.id,
  tenantId: row.tenant_id,
  kind: row.kind,
  identity: row.identity,
  domain: row.domain,
  passwordHash: row.password_hash,
  settings: parseSettings(row.settings),
  createdAt: row.created_at,
});

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && 'code' in error && String((error as { code: unknown }).code).startsWith('SQLITE_CONSTRAINT');
}

export class SqliteConfigStore implements ConfigStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {}

  async createTenant(name: string, settings: SettingOverrides = {}): Promise<Tenant> {
    const row: TenantRow = {
      id: randomUUID(),
      name,
      settings: JSON.stringify(settingOverridesSchema.parse(settings)),
      ceilings: '{}',
      suspended: 0,
      created_at: this.clock.now(),
    };
    try {
      this.db
        .prepare('INSERT INTO tenants (id, name, settings, ceilings, suspended, created_at) VALUES (@id, @name, @settings, @ceilings, @suspended, @created_at)')
        .run(row);
    } catch (error: unknown) {
      if (isUniqueViolation(error)) throw new ConflictError(`tenant "${name}" already exists`);
      throw error;
    }
    return toTenant(row);
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    const row = this.db.prepare('SELECT * FROM tenants WHERE id = ?').get(id) as TenantRow | undefined;
    return row && toTenant(row);
  }

  async getTenantByName(name: string): Promise<Tenant | undefined> {
    const row = this.db.prepare('SELECT * FROM tenants WHERE name = ?').get(name) as TenantRow | undefined;
    return row && toTenant(row);
  }

  async listTenants(): Promise<Tenant[]> {
    return (this.db.prepare('SELECT * FROM tenants ORDER BY name').all() as TenantRow[]).map(toTenant);
  }

  async updateTenant(id: string, changes: { settings?: SettingOverrides; ceilings?: Ceilings; suspended?: boolean }): Promise<Tenant> {
    const current = await this.getTenant(id);
    if (!current) throw new NotFoundError(`no tenant ${id}`);
    const settings = changes.settings ? settingOverridesSchema.parse(changes.settings) : current.settings;
    const ceilings = changes.ceilings ? ceilingsSchema.parse(changes.ceilings) : current.ceilings;
    const suspended = changes.suspended ?? current.suspended;
    this.db
      .prepare('UPDATE tenants SET settings = ?, ceilings = ?, suspended = ? WHERE id = ?')
      .run(JSON.stringify(settings), JSON.stringify(ceilings), suspended ? 1 : 0, id);
    return { ...current, settings, ceilings, suspended };
  }

  async deleteTenant(id: string): Promise<void> {
    const result = this.db.prepare('DELETE FROM tenants WHERE id = ?').run(id);
    if (result.changes === 0) throw new NotFoundError(`no tenant ${id}`);
  }

  async addDomain(tenantId: string, name: string): Promise<Domain> {
    const row: DomainRow = { name, tenant_id: tenantId, created_at: this.clock.now() };
    try {
      immediate(this.db, () => {
        this.db.prepare('INSERT INTO domains (name, tenant_id, created_at) VALUES (@name, @tenant_id, @created_at)').run(row);
        this.db.prepare('DELETE FROM domain_claims WHERE name = ?').run(name);
      });
    } catch (error: unknown) {
      if (isUniqueViolation(error)) throw new ConflictError(`domain "${name}" is already served`);
      throw error;
    }
    return toDomain(row);
  }

  async claimDomain(tenantId: string, name: string, token: string): Promise<DomainClaim> {
    const row: ClaimRow = { name, tenant_id: tenantId, token, created_at: this.clock.now() };
    immediate(this.db, () => {
      const served = this.db.prepare('SELECT tenant_id FROM domains WHERE name = ?').get(name) as { tenant_id: string } | undefined;
      if (served?.tenant_id === tenantId) throw new ConflictError(`domain "${name}" is already one of this tenant's verified domains`);
      if (served) throw new ConflictError(`domain "${name}" is already served and verified`);
      try {
        this.db.prepare('INSERT INTO domain_claims (name, tenant_id, token, created_at) VALUES (@name, @tenant_id, @token, @created_at)').run(row);
      } catch (error: unknown) {
        if (isUniqueViolation(error)) throw new ConflictError(`domain "${name}" is already pending for this tenant; publish its TXT record and verify it`);
        throw error;
      }
    });
    return toClaim(row);
  }

  async getDomainClaim(tenantId: string, name: string): Promise<DomainClaim | undefined> {
    const row = this.db.prepare('SELECT * FROM domain_claims WHERE tenant_id = ? AND name = ?').get(tenantId, name) as ClaimRow | undefined;
    return row && toClaim(row);
  }

  async listDomainClaims(tenantId: string): Promise<DomainClaim[]> {
    return (this.db.prepare('SELECT * FROM domain_claims WHERE tenant_id = ? ORDER BY name').all(tenantId) as ClaimRow[]).map(toClaim);
  }

  async verifyDomainClaim(tenantId: string, name: string): Promise<Domain> {
    const row: DomainRow = { name, tenant_id: tenantId, created_at: this.clock.now() };
    const outcome = immediate(this.db, (): 'verified' | 'no-claim' | 'taken' => {
      const served = this.db.prepare('SELECT tenant_id FROM domains WHERE name = ?').get(name) as { tenant_id: string } | undefined;
      const claim = this.db.prepare('SELECT 1 FROM domain_claims WHERE tenant_id = ? AND name = ?').get(tenantId, name);
      if (served && served.tenant_id !== tenantId) {
        // The first to prove it won; a claim left behind (e.g. added by the operator) goes now.
        this.db.prepare('DELETE FROM domain_claims WHERE name = ?').run(name);
        return 'taken';
      }
      if (!claim) return 'no-claim';
      this.db.prepare('INSERT INTO domains (name, tenant_id, created_at) VALUES (@name, @tenant_id, @created_at)').run(row);
      this.db.prepare('DELETE FROM domain_claims WHERE name = ?').run(name);
      return 'verified';
    });
    if (outcome === 'taken') throw new ConflictError(`domain "${name}" was proven by another tenant first; this claim is dropped`);
    if (outcome === 'no-claim') throw new NotFoundError(`no pending domain ${name}`);
    return toDomain(row);
  }

  async removeDomainClaim(tenantId: string, name: string): Promise<void> {
    const result = this.db.prepare('DELETE FROM domain_claims WHERE tenant_id = ? AND name = ?').run(tenantId, name);
    if (result.changes === 0) throw new NotFoundError(`no pending domain ${name}`);
  }

  async getDomain(name: string): Promise<Domain | undefined> {
    const row = this.db.prepare('SELECT * FROM domains WHERE name = ?').get(name) as DomainRow | undefined;
    return row && toDomain(row);
  }

  async listDomains(tenantId?: string): Promise<Domain[]> {
    const rows = tenantId
      ? this.db.prepare('SELECT * FROM domains WHERE tenant_id = ? ORDER BY name').all(tenantId)
      : this.db.prepare('SELECT * FROM domains ORDER BY name').all();
    return (rows as DomainRow[]).map(toDomain);
  }

  async removeDomain(tenantId: string, name: string): Promise<void> {
    const result = this.db.prepare('DELETE FROM domains WHERE tenant_id = ? AND name = ?').run(tenantId, name);
    if (result.changes === 0) throw new NotFoundError(`no domain ${name}`);
  }

  async createUser(input: {
    tenantId: string;
    kind: IdentityKind;
    identity: string;
    domain: string | null;
    passwordHash: string | null;
    settings?: SettingOverrides;
  }): Promise<OutgoingUser> {
    const row: UserRow = {
      id: userIdFor(input.tenantId, input.identity),
      tenant_id: input.tenantId,
      kind: input.kind,
      identity: input.identity,
      domain: input.domain,
      password_hash: input.passwordHash,
      settings: JSON.stringify(settingOverridesSchema.parse(input.settings ?? {})),
      created_at: this.clock.now(),
    };
    try {
      this.db
        .prepare(
          `INSERT INTO users (id, tenant_id, kind, identity, domain, password_hash, settings, created_at, ip_bucket)
           VALUES (@id, @tenant_id, @kind, @identity, @domain, @password_hash, @settings, @created_at, @ip_bucket)`,
        )
        .run({ ...row, ip_bucket: row.kind === 'ip' ? ipRangeBucket(row.identity) : null });
    } catch (error: unknown) {
      if (isUniqueViolation(error)) throw new ConflictError(`user "${input.identity}" already exists`);
      throw error;
    }
    return toUser(row);
  }

  async getUser(id: string): Promise<OutgoingUser | undefined> {
    const row = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  async findUserByLogin(identity: string): Promise<OutgoingUser | undefined> {
    const row = this.db
      .prepare("SELECT * FROM users WHERE identity = ? AND kind IN ('mailbox', 'domain')")
      .get(identity) as UserRow | undefined;
    return row && toUser(row);
  }

  async findIpUser(ip: string): Promise<OutgoingUser | undefined> {
    const buckets = ipAddressBuckets(ip);
    if (buckets.length === 0) return undefined;
    const rows = this.db.prepare(`SELECT * FROM users WHERE ip_bucket IN (${buckets.map(() => '?').join(', ')})`).all(...buckets) as UserRow[];
    return matchIpUser(rows.map(toUser), ip);
  }

  async listUsers(filter: { tenantId?: string; kind?: IdentityKind } = {}): Promise<OutgoingUser[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM users WHERE (@tenantId IS NULL OR tenant_id = @tenantId) AND (@kind IS NULL OR kind = @kind)
         ORDER BY identity`,
      )
      .all({ tenantId: filter.tenantId ?? null, kind: filter.kind ?? null }) as UserRow[];
    return rows.map(toUser);
  }

  async updateUser(id: string, changes: { settings?: SettingOverrides; passwordHash?: string | null }): Promise<OutgoingUser> {
    const current = await this.getUser(id);
    if (!current) throw new NotFoundError(`no user ${id}`);
    const settings = changes.settings ? settingOverridesSchema.parse(changes.settings) : current.settings;
    const passwordHash = changes.passwordHash !== undefined ? changes.passwordHash : current.passwordHash;
    this.db
      .prepare('UPDATE users SET settings = ?, password_hash = ? WHERE id = ?')
      .run(JSON.stringify(settings), passwordHash, id);
    return { ...current, settings, passwordHash };
  }

  async deleteUser(id: string): Promise<void> {
    const result = this.db.prepare('DELETE FROM users WHERE id = ?').run(id);
    if (result.changes === 0) throw new NotFoundError(`no user ${id}`);
  }
}
