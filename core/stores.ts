// Store ports for configuration (tenants, domains, users) and the message log, and the errors
// every store throws. The ports themselves live in core/ports/ (one file each, with the promises
// every implementation keeps); they are re-exported here so that existing imports keep working.
import { clampToCeilings } from './ceilings.js';
import type { OutgoingUser, Tenant } from './identity.js';
import type { ConfigStore } from './ports/config-store.js';
import { effectiveSettings, type SettingOverrides, type UserSettings } from './settings.js';

export { ConflictError, InvalidInputError, NotFoundError } from './ports/errors.js';
export type { ConfigStore } from './ports/config-store.js';
export { FINAL_STATUSES, MESSAGE_STATUSES, statusAfterEvent, type MessageEvent, type MessageLog, type MessageRecord, type MessageSearch, type MessageStatus } from './ports/message-log.js';

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

