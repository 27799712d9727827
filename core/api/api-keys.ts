// Tenant API keys. A key is shown once, when it is issued; only the SHA-256 of its secret part is
// stored. The secret is 256 random bits, so a fast hash is enough (no dictionary to guess from);
// the public id in front of it finds the row without scanning, and the hash is compared in
// constant time.
//
// Token format: `opk_<id>_<secret>`, id = 16 hex characters, secret = 43 base64url characters.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKey, ApiKeyStore } from '../ports/api-keys.js';
export type { ApiKey, ApiKeyStore } from '../ports/api-keys.js';

const TOKEN_RE = /^opk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Creates a key; the returned token is the only copy of the secret that will ever exist. */
export async function issueApiKey(store: ApiKeyStore, input: { tenantId: string; name: string; now: number }): Promise<{ key: ApiKey; token: string }> {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const key: ApiKey = { id, tenantId: input.tenantId, name: input.name, createdAt: input.now, lastUsedAt: null };
  await store.insert({ ...key, secretHash: hashSecret(secret) });
  return { key, token: `opk_${id}_${secret}` };
}

/** Whether `token` looks like an API key at all (so that other bearer tokens go elsewhere). */
export function looksLikeApiKey(token: string): boolean {
  return token.startsWith('opk_');
}

/** The key `token` belongs to, its last use recorded; undefined for anything else. */
export async function verifyApiKey(store: ApiKeyStore, token: string, now: number): Promise<ApiKey | undefined> {
  const match = TOKEN_RE.exec(token);
  if (!match?.[1] || !match[2]) return undefined;
  const stored = await store.find(match[1]);
  const actual = Buffer.from(hashSecret(match[2]), 'hex');
  // Compared even when the id is unknown, so that a wrong id and a wrong secret take as long.
  const expected = Buffer.from(stored?.secretHash ?? '0'.repeat(64), 'hex');
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual) || !stored) return undefined;
  await store.touch(stored.id, now);
  const { secretHash: _hash, ...key } = stored;
  return { ...key, lastUsedAt: now };
}
