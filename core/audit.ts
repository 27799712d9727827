// The audit log: who did what to a tenant's configuration — released or deleted a held message,
// locked or unlocked a user, changed a setting or a ceiling, added, verified or removed a domain,
// issued or revoked a key. Written by the API and the CLI after the change succeeded; read by the
// tenant (its own entries) and the operator (all). Never holds secrets: a key's id, not the key.
export type { AuditAction, AuditEntry, AuditLog } from './ports/audit.js';

export const CLI_ACTOR = 'operator (cli)';
