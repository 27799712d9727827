// Tenants, their domains (verified, and pending claims) and their outgoing users: DynamoDB on AWS
// (adapters/aws/dynamodb-config-store.ts), SQLite on the single node (adapters/local/config-store.ts).
// Contract: test/core/config-store.contract.ts.
//
// Promises every implementation keeps:
// - names are unique and the uniqueness holds under concurrency: a tenant name, a served domain,
//   a user's identity (its login) — the second of two creates at once gets ConflictError;
// - a domain is served for one tenant only; of several tenants claiming a name, the first to
//   verify wins atomically and every other claim on the name goes (none is left behind);
// - a user's id follows from its tenant and identity (`userIdFor`): re-creating a deleted user
//   gives it back its id, so its locks and counters (keyed by user id) find it again;
// - deleting a tenant deletes its domains, its pending claims and its users (and their logins,
//   which become free again); what other stores hold for the tenant (API keys, DKIM keys,
//   suppression list, quarantine) is deleted by the tenant-removal use case, not here;
// - `findUserByLogin` never returns an IP user (they have no password);
// - `findIpUser` returns the IP user whose range holds the address, the most specific one when
//   ranges nest, without reading every IP user (it runs on every MAIL FROM without AUTH);
// - the reads the ingress makes for every message (getTenant, getDomain, getDomainClaim, getUser,
//   findIpUser) answer with a Maybe (core/maybe.ts): a store that keeps them in memory answers at
//   once, without a promise; the others answer with a promise, as before.
// - NotFoundError for an unknown tenant, domain or user on update/delete; reads return undefined.
import type { DomainClaim } from '../domains.js';
import type { Ceilings } from '../ceilings.js';
import type { Domain, IdentityKind, OutgoingUser, Tenant } from '../identity.js';
import type { Maybe } from '../maybe.js';
import type { SettingOverrides } from '../settings.js';

export interface ConfigStore {
  createTenant(name: string, settings?: SettingOverrides): Promise<Tenant>;
  getTenant(id: string): Maybe<Tenant | undefined>;
  getTenantByName(name: string): Promise<Tenant | undefined>;
  listTenants(): Promise<Tenant[]>;
  updateTenant(id: string, changes: { settings?: SettingOverrides; ceilings?: Ceilings; suspended?: boolean }): Promise<Tenant>;
  deleteTenant(id: string): Promise<void>;

  /** A verified domain (the operator vouches); drops every pending claim on it. */
  addDomain(tenantId: string, name: string): Promise<Domain>;
  /** Verified domains only: pending claims are neither served, signed for nor sent from. */
  getDomain(name: string): Maybe<Domain | undefined>;
  listDomains(tenantId?: string): Promise<Domain[]>;
  removeDomain(tenantId: string, name: string): Promise<void>;

  /** A pending claim of `tenantId` on `name` (Conflict when verified by anyone, or already claimed by this tenant). */
  claimDomain(tenantId: string, name: string, token: string): Promise<DomainClaim>;
  getDomainClaim(tenantId: string, name: string): Maybe<DomainClaim | undefined>;
  listDomainClaims(tenantId: string): Promise<DomainClaim[]>;
  /** Turns the claim into the verified domain and drops the other tenants' claims, atomically; Conflict when someone proved it first. */
  verifyDomainClaim(tenantId: string, name: string): Promise<Domain>;
  removeDomainClaim(tenantId: string, name: string): Promise<void>;

  createUser(input: {
    tenantId: string;
    kind: IdentityKind;
    identity: string;
    domain: string | null;
    passwordHash: string | null;
    settings?: SettingOverrides;
  }): Promise<OutgoingUser>;
  getUser(id: string): Maybe<OutgoingUser | undefined>;
  /** The mailbox or domain user that logs in as `identity` (normalised). */
  findUserByLogin(identity: string): Promise<OutgoingUser | undefined>;
  listUsers(filter?: { tenantId?: string; kind?: IdentityKind }): Promise<OutgoingUser[]>;
  /** The IP user whose range holds the client address `ip`, the most specific one (see core/ip-user-lookup.ts). */
  findIpUser(ip: string): Maybe<OutgoingUser | undefined>;
  updateUser(id: string, changes: { settings?: SettingOverrides; passwordHash?: string | null }): Promise<OutgoingUser>;
  deleteUser(id: string): Promise<void>;
}

