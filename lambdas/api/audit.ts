// Writes the audit entry of a change made through the API, after the change succeeded.
import type { AuditAction } from '../../core/audit.js';
import type { ApiDeps } from './deps.js';
import { callerName, type Caller } from './route.js';

export async function recordAudit(
  deps: ApiDeps,
  caller: Caller,
  tenantId: string | null,
  action: AuditAction,
  target: string,
  detail: Record<string, unknown> = {},
): Promise<void> {
  await deps.audit?.record({ tenantId, actor: callerName(caller), action, target, detail });
}
