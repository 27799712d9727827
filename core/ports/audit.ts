// The audit log: who changed what in a tenant's configuration. DynamoDB on AWS
// (adapters/aws/dynamodb-audit-log.ts), SQLite on the single node (adapters/local/audit-log.ts).
// Contract: test/core/audit-log.contract.ts.
//
// Promises every implementation keeps:
// - every entry gets an id of its own, increasing with time, even for entries recorded at once;
// - `list` is newest first and pages on with `beforeId`; a tenant's query returns only its own
//   entries;
// - entries are never changed; they never hold secrets (the caller passes ids, not keys).

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
