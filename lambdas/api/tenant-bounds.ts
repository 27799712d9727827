// What a tenant key may not do to its own settings: grant itself sendAsAnyAddress (the operator's
// to grant: it lifts the rule that a user sends only as itself) or go beyond the operator's
// ceilings. The operator token is not bound by either; the ceilings still clamp what applies.
import { ceilingBreach, describeBreach } from '../../core/ceilings.js';
import type { Tenant } from '../../core/identity.js';
import type { SettingOverrides } from '../../core/settings.js';
import { ApiProblem } from './problem.js';
import { isTenantKey, type Caller } from './route.js';

/** Checks the values a request sets (null, "remove the override", is always allowed). */
export function assertWithinTenantBounds(caller: Caller, tenant: Tenant, changes: Record<string, unknown> | SettingOverrides | undefined): void {
  if (!changes || !isTenantKey(caller)) return;
  if (changes.sendAsAnyAddress === true) {
    throw new ApiProblem(403, 'sendAsAnyAddress is granted by the operator only; a tenant API key cannot turn it on');
  }
  const set = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== null && value !== undefined));
  const breach = ceilingBreach(set, tenant.ceilings);
  if (breach) throw new ApiProblem(403, describeBreach(breach));
}
