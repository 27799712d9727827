// The deployment's BATV keys, sealed at rest: DynamoDB + KMS on AWS
// (adapters/aws/dynamodb-batv-key-store.ts), SQLite + the key file on the single node
// (adapters/local/batv-key-store.ts). Contract: test/core/batv-key-store.contract.ts.
//
// Promises every implementation keeps:
// - exactly one current key, generated on first use, even when first used concurrently (two
//   processes starting at once agree on it);
// - after `rotate`, the retired key stays usable for validation during the grace period, and not
//   after;
// - secrets are sealed at rest with the SecretBox; they leave the store only through these calls.

export interface BatvKey {
  /** 0-9, the K digit of the tag. */
  index: number;
  secret: Buffer;
  createdAt: number;
  /** When a newer key took over; tags made with it are still accepted for a grace period. */
  retiredAt: number | null;
}

/** Where the deployment's BATV keys live (sealed at rest by the adapter). */
export interface BatvKeyStore {
  /** The usable keys: the current one and the retired ones still within their grace period. */
  keys(now: number): Promise<BatvKey[]>;
  /** Makes a new current key (generated on first use when none exists). */
  rotate(now: number): Promise<BatvKey>;
  /** The key new tags are made with, generated on first use. */
  current(now: number): Promise<BatvKey>;
}
