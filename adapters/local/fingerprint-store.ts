// FingerprintStore on SQLite. Fingerprints are stored with their 8 one-byte bands: near-duplicate
// lookups fetch rows sharing a band (indexed) and measure the Hamming distance in JS.
import type { BlockedHash, FingerprintStore, FuzzyMatch, HashSource } from '../../core/scan/fingerprint.js';
import { fingerprintBands, hammingDistance } from '../../core/scan/fingerprint.js';
import type { Db } from './sqlite.js';

interface HashRow {
  sha256: string;
  source: HashSource;
  reason: string;
  added_at: number;
}

const toBlocked = (row: HashRow): BlockedHash => ({ sha256: row.sha256, source: row.source, reason: row.reason, addedAt: row.added_at });

const BAND_COLUMNS = ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7'];
const bandMatch = BAND_COLUMNS.map((column, i) => `${column} = @b${i}`).join(' OR ');
const bandParams = (fingerprint: string): Record<string, number> =>
  Object.fromEntries(fingerprintBands(fingerprint).map((band, i) => [`b${i}`, band]));

export class SqliteFingerprintStore implements FingerprintStore {
  constructor(private readonly db: Db) {}

  async blockHash(entry: BlockedHash): Promise<void> {
    // An operator entry is never downgraded to a learned one.
    this.db
      .prepare(
        `INSERT INTO blocked_hashes (sha256, source, reason, added_at) VALUES (@sha256, @source, @reason, @addedAt)
         ON CONFLICT (sha256) DO UPDATE SET source = excluded.source, reason = excluded.reason, added_at = excluded.added_at
         WHERE blocked_hashes.source <> 'operator' OR excluded.source = 'operator'`,
      )
      .run({ ...entry, sha256: entry.sha256.toLowerCase() });
  }

  async unblockHash(sha256: string): Promise<void> {
    this.db.prepare('DELETE FROM blocked_hashes WHERE sha256 = ?').run(sha256.toLowerCase());
  }

  async findBlockedHashes(sha256s: string[]): Promise<BlockedHash[]> {
    if (sha256s.length === 0) return [];
    const statement = this.db.prepare('SELECT * FROM blocked_hashes WHERE sha256 = ?');
    const found: BlockedHash[] = [];
    for (const hash of new Set(sha256s.map((item) => item.toLowerCase()))) {
      const row = statement.get(hash) as HashRow | undefined;
      if (row) found.push(toBlocked(row));
    }
    return found;
  }

  async listBlockedHashes(): Promise<BlockedHash[]> {
    return (this.db.prepare('SELECT * FROM blocked_hashes ORDER BY added_at').all() as HashRow[]).map(toBlocked);
  }

  async addSpamFingerprint(fingerprint: string, at: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO spam_fingerprints (fingerprint, ${BAND_COLUMNS.join(', ')}, added_at)
         VALUES (@fingerprint, ${BAND_COLUMNS.map((_, i) => `@b${i}`).join(', ')}, @at)
         ON CONFLICT (fingerprint) DO UPDATE SET added_at = excluded.added_at`,
      )
      .run({ fingerprint, at, ...bandParams(fingerprint) });
  }

  async nearestSpamFingerprint(fingerprint: string, maxDistance: number): Promise<FuzzyMatch | undefined> {
    const rows = this.db
      .prepare(`SELECT fingerprint FROM spam_fingerprints WHERE ${bandMatch}`)
      .all(bandParams(fingerprint)) as Array<{ fingerprint: string }>;
    let best: FuzzyMatch | undefined;
    for (const row of rows) {
      const distance = hammingDistance(fingerprint, row.fingerprint);
      if (distance <= maxDistance && (!best || distance < best.distance)) best = { fingerprint: row.fingerprint, distance };
    }
    return best;
  }

  async recordSighting(fingerprint: string, identity: string, at: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO fingerprint_sightings (fingerprint, ${BAND_COLUMNS.join(', ')}, identity, at)
         VALUES (@fingerprint, ${BAND_COLUMNS.map((_, i) => `@b${i}`).join(', ')}, @identity, @at)
         ON CONFLICT (fingerprint, identity) DO UPDATE SET at = excluded.at`,
      )
      .run({ fingerprint, identity, at, ...bandParams(fingerprint) });
  }

  async countSenders(fingerprint: string, maxDistance: number, since: number): Promise<number> {
    const rows = this.db
      .prepare(`SELECT fingerprint, identity FROM fingerprint_sightings WHERE at >= @since AND (${bandMatch})`)
      .all({ since, ...bandParams(fingerprint) }) as Array<{ fingerprint: string; identity: string }>;
    const identities = new Set<string>();
    for (const row of rows) if (hammingDistance(fingerprint, row.fingerprint) <= maxDistance) identities.add(row.identity);
    return identities.size;
  }

  async purgeOlderThan(cutoff: { learned: number; sightings: number }): Promise<void> {
    this.db.prepare('DELETE FROM fingerprint_sightings WHERE at < ?').run(cutoff.sightings);
    this.db.prepare('DELETE FROM spam_fingerprints WHERE added_at < ?').run(cutoff.learned);
    this.db.prepare("DELETE FROM blocked_hashes WHERE source <> 'operator' AND added_at < ?").run(cutoff.learned);
  }
}
