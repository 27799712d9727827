// Tenant API keys (only the hash of each secret): DynamoDB on AWS
// (adapters/aws/dynamodb-api-key-store.ts), SQLite on the single node (adapters/local/api-key-store.ts).
// Contract: test/core/api-key-store.contract.ts.
//
// Promises every implementation keeps:
// - a key is found by its public id with one keyed read (every API call does it), never a scan;
// - `list` gives a tenant's keys oldest first, never another tenant's;
// - `revoke` deletes a key only for its own tenant (false otherwise); `revokeAll` deletes every
//   key of a tenant (the tenant is being deleted: the config store does not do it);
// - the key itself is never stored, only the hash of its secret.

export interface ApiKey {
  id: string;
  tenantId: string;
  /** What the tenant called it ("billing system", "panel"). */
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** Storage of API keys (SQLite | DynamoDB). Never holds the key itself, only its hash. */
export interface ApiKeyStore {
  insert(key: ApiKey & { secretHash: string }): Promise<void>;
  find(id: string): Promise<(ApiKey & { secretHash: string }) | undefined>;
  list(tenantId: string): Promise<ApiKey[]>;
  /** Deletes the key of that tenant; false when there is none. */
  revoke(tenantId: string, id: string): Promise<boolean>;
  /** Deletes every key of the tenant (tenant deleted). */
  revokeAll(tenantId: string): Promise<void>;
  touch(id: string, at: number): Promise<void>;
}
