// Blocked attachment hashes, learned spam fingerprints and bulk sightings: DynamoDB on AWS
// (adapters/aws/dynamodb-fingerprint-store.ts), SQLite on the single node
// (adapters/local/fingerprint-store.ts). Contract: test/core/fingerprint-store.contract.ts.
//
// Promises every implementation keeps:
// - fingerprints are 16 hex digits (64-bit simhash); near-duplicates are found within the given
//   Hamming distance, unrelated texts are not;
// - bulk counts are distinct identities within the window (one sender sending twice counts once);
// - an operator's blocked hash is never replaced by a learned one, and purging keeps it;
// - `purgeOlderThan` removes learned entries and sightings older than their cutoffs only.

export type HashSource = 'operator' | 'virus' | 'spam';

export interface BlockedHash {
  sha256: string;
  source: HashSource;
  reason: string;
  addedAt: number;
}

export interface FuzzyMatch {
  fingerprint: string;
  distance: number;
}

/** Storage of the blocklists and the bulk sightings (SQLite | DynamoDB). Fingerprints are 16 hex digits. */
export interface FingerprintStore {
  blockHash(entry: BlockedHash): Promise<void>;
  unblockHash(sha256: string): Promise<void>;
  /** The entries among `sha256s` that are blocked. */
  findBlockedHashes(sha256s: string[]): Promise<BlockedHash[]>;
  listBlockedHashes(): Promise<BlockedHash[]>;

  addSpamFingerprint(fingerprint: string, at: number): Promise<void>;
  /** The closest known spam fingerprint within `maxDistance` bits, if any. */
  nearestSpamFingerprint(fingerprint: string, maxDistance: number): Promise<FuzzyMatch | undefined>;

  recordSighting(fingerprint: string, identity: string, at: number): Promise<void>;
  /** Distinct identities that sent a fingerprint within `maxDistance` bits since `since`. */
  countSenders(fingerprint: string, maxDistance: number, since: number): Promise<number>;

  /**
   * Removes learned fingerprints and hashes older than `learned` (operator hashes stay) and bulk
   * sightings older than `sightings` (the bulk detector only looks back its window).
   */
  purgeOlderThan(cutoff: { learned: number; sightings: number }): Promise<void>;
}
