// Removing a tenant (operator only): its API keys stop working first, then its DKIM keys, its
// suppression list and its quarantined messages (with their files) go, and last the tenant with
// its domains, claims and users (the config store's promise). The message log keeps its records
// for the retention period; they are no longer reachable through the API.
import type { AuditLog } from '../audit.js';
import type { ApiKeyStore } from '../api/api-keys.js';
import type { DkimKeyStore } from '../dkim/keys.js';
import type { Tenant } from '../identity.js';
import type { BlobStore, Clock, Queue } from '../ports.js';
import { deleteFromQuarantine, type QuarantineStore } from '../scan/quarantine.js';
import type { ConfigStore, MessageLog } from '../stores.js';
import type { SuppressionList } from '../suppression.js';
import { removeDkimKeysOf } from './remove-domain.js';

export interface RemoveTenantDeps {
  configStore: Pick<ConfigStore, 'listDomains' | 'deleteTenant'>;
  apiKeys: Pick<ApiKeyStore, 'revokeAll'>;
  dkimKeys?: Pick<DkimKeyStore, 'list' | 'remove'>;
  suppression?: Pick<SuppressionList, 'list' | 'remove'>;
  quarantine?: { store: QuarantineStore; blobs: BlobStore; queue: Queue };
  messageLog: MessageLog;
  clock: Clock;
  audit?: AuditLog;
}

const QUARANTINE_PAGE = 100;

export async function removeTenant(deps: RemoveTenantDeps, input: { tenant: Tenant; actor: string }): Promise<void> {
  const { tenant, actor } = input;
  await deps.apiKeys.revokeAll(tenant.id);
  for (const domain of await deps.configStore.listDomains(tenant.id)) await removeDkimKeysOf(deps.dkimKeys, domain.name);
  if (deps.suppression) {
    for (const entry of await deps.suppression.list(tenant.id, Number.MIN_SAFE_INTEGER)) await deps.suppression.remove(tenant.id, entry.address);
  }
  if (deps.quarantine) {
    const q = deps.quarantine;
    for (;;) {
      const held = await q.store.list({ tenantId: tenant.id, limit: QUARANTINE_PAGE });
      if (held.length === 0) break;
      for (const entry of held) {
        await deleteFromQuarantine({ quarantine: q.store, blobs: q.blobs, queue: q.queue, log: deps.messageLog, clock: deps.clock }, entry.messageId, actor);
      }
    }
  }
  await deps.configStore.deleteTenant(tenant.id);
  await deps.audit?.record({ tenantId: tenant.id, actor, action: 'tenant.deleted', target: tenant.name, detail: {} });
}
