// Creating an outgoing user, by the operator (CLI, API) or a tenant (API, panel). The rules are
// the same whoever asks: a mailbox or domain identity lies in one of the tenant's verified
// domains; an IP user takes no password, covers at most /16 (IPv6 /32) unless the operator
// explicitly allows a wider range, never overlaps another tenant's range (an address belongs to
// one tenant only), and, made with a tenant key, stays within what a tenant may claim. Without a
// given password one is generated and returned once. Each entry words a refusal its own way
// (the CLI names its commands, the API its paths and statuses).
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit.js';
import { hashPassword, ipRangeProblem, parseIdentity, tenantIpRangeProblem, type OutgoingUser, type Tenant } from '../identity.js';
import type { SettingOverrides } from '../settings.js';
import type { ConfigStore } from '../stores.js';

/** 24 characters from 144 random bits: strong, and typeable into a mail client. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export type UserRefusal =
  | { reason: 'domain-not-of-tenant'; domain: string }
  | { reason: 'password-for-ip-user' }
  /** A tenant key asked for a range a tenant may not make (too wide for a tenant, or a special range). */
  | { reason: 'range-not-for-tenants'; detail: string }
  | { reason: 'range-too-wide'; range: string; widest: number }
  /** `other` is the other tenant's range: the operator may be told, a tenant never. */
  | { reason: 'range-overlap'; range: string; other: string };

export class UserCreationRefused extends Error {
  override name = 'UserCreationRefused';
  constructor(readonly refusal: UserRefusal) {
    super(`user creation refused: ${refusal.reason}`);
  }
}

export interface CreateUserDeps {
  configStore: Pick<ConfigStore, 'getDomain' | 'listUsers' | 'createUser'>;
  audit?: AuditLog;
}

export interface CreateUserInput {
  tenant: Tenant;
  /** user@domain, a domain, or an IP address / CIDR range. */
  identity: string;
  /** Absent: one is generated (mailbox and domain users). */
  password?: string;
  settings?: SettingOverrides;
  /** Who asks, as the audit log names them. */
  actor: string;
  /** A tenant key asks: only ranges a tenant may claim (public, at most /24 or IPv6 /56). */
  asTenant?: boolean;
  /** The operator vouches for an IP range wider than /16 (IPv6 /32). */
  allowWideRange?: boolean;
}

export interface CreatedUser {
  user: OutgoingUser;
  /** The password made for the user, shown once; absent when one was given or for IP users. */
  generatedPassword?: string;
}

export async function createUser(deps: CreateUserDeps, input: CreateUserInput): Promise<CreatedUser> {
  const { tenant } = input;
  const parsed = parseIdentity(input.identity);
  if (parsed.domain !== null) {
    const domain = await deps.configStore.getDomain(parsed.domain);
    if (domain?.tenantId !== tenant.id) throw new UserCreationRefused({ reason: 'domain-not-of-tenant', domain: parsed.domain });
  }
  if (parsed.kind === 'ip') {
    if (input.password !== undefined) throw new UserCreationRefused({ reason: 'password-for-ip-user' });
    if (input.asTenant) {
      const refused = tenantIpRangeProblem(parsed.identity);
      if (refused) throw new UserCreationRefused({ reason: 'range-not-for-tenants', detail: refused });
    }
    const problem = ipRangeProblem(parsed.identity, tenant.id, await deps.configStore.listUsers({ kind: 'ip' }));
    if (problem?.reason === 'overlap') throw new UserCreationRefused({ reason: 'range-overlap', range: parsed.identity, other: problem.other.identity });
    if (problem?.reason === 'too-wide' && !input.allowWideRange) throw new UserCreationRefused({ reason: 'range-too-wide', range: parsed.identity, widest: problem.widest });
  }
  const generatedPassword = parsed.kind !== 'ip' && input.password === undefined ? generatePassword() : undefined;
  const password = input.password ?? generatedPassword;
  const user = await deps.configStore.createUser({
    tenantId: tenant.id,
    kind: parsed.kind,
    identity: parsed.identity,
    domain: parsed.domain,
    passwordHash: password === undefined ? null : await hashPassword(password),
    settings: input.settings ?? {},
  });
  await deps.audit?.record({ tenantId: tenant.id, actor: input.actor, action: 'user.created', target: user.identity, detail: { kind: user.kind } });
  return { user, ...(generatedPassword ? { generatedPassword } : {}) };
}
