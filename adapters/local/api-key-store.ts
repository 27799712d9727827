// Tenant API keys in SQLite: the id, the tenant, a name and the SHA-256 of the secret.
import type { ApiKey, ApiKeyStore } from '../../core/api/api-keys.js';
import type { Db } from './sqlite.js';

interface Row {
  id: string;
  tenant_id: string;
  name: string;
  secret_hash: string;
  created_at: number;
  last_used_at: number | null;
}

const toKey = (row: Row): ApiKey => ({
  id: row.id,
  tenantId: row.tenant_id,
  name: row.name,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

export class SqliteApiKeyStore implements ApiKeyStore {
  constructor(private readonly db: Db) {}

  async insert(key: ApiKey & { secretHash: string }): Promise<void> {
    this.db
      .prepare('INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(key.id, key.tenantId, key.name, key.secretHash, key.createdAt, key.lastUsedAt);
  }

  async find(id: string): Promise<(ApiKey & { secretHash: string }) | undefined> {
    const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return row ? { ...toKey(row), secretHash: row.secret_hash } : undefined;
  }

  async list(tenantId: string): Promise<ApiKey[]> {
    const rows = this.db.prepare('SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id').all(tenantId) as Row[];
    return rows.map(toKey);
  }

  async revoke(tenantId: string, id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM api_keys WHERE tenant_id = ? AND id = ?').run(tenantId, id).changes > 0;
  }

  async revokeAll(tenantId: string): Promise<void> {
    this.db.prepare('DELETE FROM api_keys WHERE tenant_id = ?').run(tenantId);
  }

  async touch(id: string, at: number): Promise<void> {
    this.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(at, id);
  }
}
