// The audit log: who did what to a tenant's configuration — released or deleted a held message,
// locked or unlocked a user, changed a setting or a ceiling, added, verified or removed a domain,
// issued or revoked a key. Written by the API and the CLI after the change succeeded; read by the
// tenant (its own entries) and the operator (all). Never holds secrets: a key's id, not the key.

export type AuditAction =
  | 'tenant.created'
  | 'tenant.suspended'
  | 'tenant.unsuspended'
  | 'tenant.deleted'
  | 'key.created'
  | 'key.revoked'
  | 'settings.changed'
  | 'ceilings.changed'
  | 'domain.added'
  | 'domain.claimed'
  | 'domain.verified'
  | 'domain.removed'
  | 'user.created'
  | 'user.deleted'
  | 'user.password-set'
  | 'user.locked'
  | 'user.unlocked'
  | 'quarantine.released'
  | 'quarantine.deleted';

export interface AuditEntry {
  id: number;
  at: number;
  /** The tenant concerned; null for deployment-wide actions. */
  tenantId: string | null;
  /** Who: `operator`, `operator (cli)` or `tenant-key:<key id>`. */
  actor: string;
  action: AuditAction;
  /** What: a domain, a user identity, a message id, a key id, `tenant`. */
  target: string;
  detail: Record<string, unknown>;
}

export interface AuditLog {
  record(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<void>;
  /** Newest first; `beforeId` pages on. */
  list(query: { tenantId?: string; beforeId?: number; limit: number }): Promise<AuditEntry[]>;
}

export const CLI_ACTOR = 'operator (cli)';
