// Store ports for configuration (tenants, domains, users) and the message log.
// Implemented by adapters/local (SQLite) and, later, adapters/aws (DynamoDB).
import { clampToCeilings, type Ceilings } from './ceilings.js';
import type { DomainClaim } from './domains.js';
import type { Domain, IdentityKind, OutgoingUser, Tenant } from './identity.js';
import { effectiveSettings, type SettingOverrides, type UserSettings } from './settings.js';

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Input a store cannot use (e.g. a pagination cursor it did not issue). */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

export interface ConfigStore {
  createTenant(name: string, settings?: SettingOverrides): Promise<Tenant>;
  getTenant(id: string): Promise<Tenant | undefined>;
  getTenantByName(name: string): Promise<Tenant | undefined>;
  listTenants(): Promise<Tenant[]>;
  updateTenant(id: string, changes: { settings?: SettingOverrides; ceilings?: Ceilings; suspended?: boolean }): Promise<Tenant>;
  deleteTenant(id: string): Promise<void>;

  /** A verified domain (the operator vouches); drops every pending claim on it. */
  addDomain(tenantId: string, name: string): Promise<Domain>;
  /** Verified domains only: pending claims are neither served, signed for nor sent from. */
  getDomain(name: string): Promise<Domain | undefined>;
  listDomains(tenantId?: string): Promise<Domain[]>;
  removeDomain(tenantId: string, name: string): Promise<void>;

  /** A pending claim of `tenantId` on `name` (Conflict when verified by anyone, or already claimed by this tenant). */
  claimDomain(tenantId: string, name: string, token: string): Promise<DomainClaim>;
  getDomainClaim(tenantId: string, name: string): Promise<DomainClaim | undefined>;
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
  getUser(id: string): Promise<OutgoingUser | undefined>;
  /** The mailbox or domain user that logs in as `identity` (normalised). */
  findUserByLogin(identity: string): Promise<OutgoingUser | undefined>;
  listUsers(filter?: { tenantId?: string; kind?: IdentityKind }): Promise<OutgoingUser[]>;
  updateUser(id: string, changes: { settings?: SettingOverrides; passwordHash?: string | null }): Promise<OutgoingUser>;
  deleteUser(id: string): Promise<void>;
}

export const MESSAGE_STATUSES = ['received', 'queued', 'scanning', 'deferred', 'delivered', 'partially-delivered', 'bounced', 'quarantined', 'refused', 'expired', 'held-locked', 'held-manual', 'purged'] as const;
/**
 * The effective settings of a user: its overrides, over its tenant's defaults, over the
 * deployment defaults. A user that is not found gets the tenant-less defaults.
 */
export async function userSettings(configStore: Pick<ConfigStore, 'getUser' | 'getTenant'>, user: OutgoingUser | string, defaults?: SettingOverrides): Promise<UserSettings> {
  const found = typeof user === 'string' ? await configStore.getUser(user) : user;
  const tenant = found ? await configStore.getTenant(found.tenantId) : undefined;
  return effectiveUserSettings(found?.settings, tenant, defaults);
}

/** User overrides over tenant defaults over deployment defaults, held within the tenant's ceilings. */
export function effectiveUserSettings(user: SettingOverrides | undefined, tenant: Pick<Tenant, 'settings' | 'ceilings'> | undefined, defaults?: SettingOverrides): UserSettings {
  return clampToCeilings(effectiveSettings(user, tenant?.settings, defaults), tenant?.ceilings);
}

export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export interface MessageRecord {
  id: string;
  tenantId: string | null;
  userId: string | null;
  identity: string | null;
  mailFrom: string;
  rcptTo: string[];
  size: number;
  subject: string | null;
  status: MessageStatus;
  receivedAt: number;
  updatedAt: number;
}

export interface MessageEvent {
  at: number;
  /** received, queued, scanned, delivered, deferred, bounced, quarantined, released, dsn-sent, ... */
  event: string;
  detail: Record<string, unknown>;
}

export interface MessageSearch {
  tenantId?: string;
  userId?: string;
  sender?: string;
  recipient?: string;
  status?: MessageStatus;
  from?: number;
  to?: number;
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface MessageLog {
  create(record: Omit<MessageRecord, 'updatedAt'>): Promise<void>;
  /** Appends an event; `status`, when given, becomes the message's status. */
  addEvent(messageId: string, event: string, detail?: Record<string, unknown>, status?: MessageStatus): Promise<void>;
  get(messageId: string): Promise<{ message: MessageRecord; events: MessageEvent[] } | undefined>;
  search(query: MessageSearch): Promise<{ items: MessageRecord[]; nextCursor: string | null }>;
  /** Removes messages received before `cutoff` (ms) with their events; returns how many. */
  purgeOlderThan(cutoff: number): Promise<number>;
}
