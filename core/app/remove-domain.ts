// Removing a sending domain from a tenant, by the operator (CLI, API) or the tenant (API, panel).
// A verified domain is refused while outgoing users of it exist: they would be left with an
// identity in a domain nobody serves (delete them first). It leaves with its DKIM keys, so that
// whoever adds it next starts clean. A domain the tenant only claimed (pending) is withdrawn.
import type { AuditLog } from '../audit.js';
import type { DkimKeyStore } from '../dkim/keys.js';
import type { Tenant } from '../identity.js';
import { ConflictError, NotFoundError, type ConfigStore } from '../stores.js';

export interface RemoveDomainDeps {
  configStore: Pick<ConfigStore, 'getDomain' | 'getDomainClaim' | 'removeDomainClaim' | 'listUsers' | 'removeDomain'>;
  dkimKeys?: Pick<DkimKeyStore, 'list' | 'remove'>;
  audit?: AuditLog;
}

/** Removes every DKIM key of `domain`. */
export async function removeDkimKeysOf(dkimKeys: RemoveDomainDeps['dkimKeys'], domain: string): Promise<void> {
  if (!dkimKeys) return;
  for (const key of await dkimKeys.list(domain)) await dkimKeys.remove(domain, key.selector);
}

/**
 * Removes `name` (already normalised) from `tenant`: 'removed' for a verified domain,
 * 'withdrawn' for a pending claim. NotFoundError when the tenant has neither; ConflictError while
 * users of the domain exist.
 */
export async function removeDomain(deps: RemoveDomainDeps, input: { tenant: Tenant; name: string; actor: string }): Promise<'removed' | 'withdrawn'> {
  const { tenant, name, actor } = input;
  const domain = await deps.configStore.getDomain(name);
  if (!domain || domain.tenantId !== tenant.id) {
    if (!(await deps.configStore.getDomainClaim(tenant.id, name))) throw new NotFoundError(`tenant ${tenant.id} has no domain ${name}`);
    await deps.configStore.removeDomainClaim(tenant.id, name);
    await deps.audit?.record({ tenantId: tenant.id, actor, action: 'domain.removed', target: name, detail: { pending: true } });
    return 'withdrawn';
  }
  const users = (await deps.configStore.listUsers({ tenantId: tenant.id })).filter((user) => user.domain === name);
  if (users.length > 0) {
    throw new ConflictError(`${users.length} user(s) of ${name} exist (e.g. ${users[0]?.identity ?? ''}); delete them first`);
  }
  await deps.configStore.removeDomain(tenant.id, name);
  await removeDkimKeysOf(deps.dkimKeys, name);
  await deps.audit?.record({ tenantId: tenant.id, actor, action: 'domain.removed', target: name, detail: {} });
  return 'removed';
}
