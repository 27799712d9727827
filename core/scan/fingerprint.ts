// Attachment hashes and fuzzy body fingerprints.
// - SHA-256 of every attachment, checked against a blocklist (operator entries and hashes learned
//   from virus and spam verdicts).
// - A 64-bit simhash over the words and 3-word shingles of the normalised body text: near-duplicate texts (a
//   name or a number changed) differ in few bits, so known spam matches within a Hamming distance.
// - Bulk: the same fingerprint sent by many different identities within a window is a campaign.
import { createHash } from 'node:crypto';
import { md5Prefix } from './md5-prefix.js';
export type { BlockedHash, FingerprintStore, FuzzyMatch, HashSource } from '../ports/fingerprints.js';

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Lower-cases, drops URLs, e-mail addresses and digits (campaigns vary them per recipient),
 * keeps letters only, and returns the words.
 */
export function normaliseWords(text: string): string[] {
  // Token by token: the regular expression /\S+@\S+/ over the whole text backtracks
  // quadratically on a long run without an @ (seconds for one 100 KB token).
  return text
    .toLowerCase()
    .split(/\s+/)
    .map((token) => (token.includes('@') ? '' : token.replace(/https?:\/\/.*$/, '')))
    .join(' ')
    .replace(/[^\p{L}]+/gu, ' ')
    .split(' ')
    .filter((word) => word.length > 1);
}

const SHINGLE = 3;


/**
 * Words a fingerprint is made of, at most: the simhash costs about 130 hash-bit steps a word, so
 * a 25 MB body of words would hold the scan (and on the single node, every session) for minutes.
 * A campaign's near-duplicates already agree on their first 20,000 words.
 */
const MAX_FINGERPRINT_WORDS = 20_000;

/**
 * 64-bit simhash (16 hex digits) of the text's words and 3-word shingles (words alone keep an edit's
 * effect small, shingles keep some word order), or null when it has fewer than `minWords` words. */
export function fuzzyFingerprint(text: string, minWords: number): string | null {
  const words = normaliseWords(text).slice(0, MAX_FINGERPRINT_WORDS);
  if (words.length < Math.max(minWords, SHINGLE)) return null;
  const weights = new Int32Array(64);
  const features: string[] = [...words];
  for (let i = 0; i + SHINGLE <= words.length; i++) features.push(words.slice(i, i + SHINGLE).join(' '));
  for (const feature of features) {
    // The first 64 bits of the feature's MD5, big-endian, as two 32-bit halves (BigInt shifts
    // cost ten times more); in JavaScript, a third of the cost of a call into OpenSSL each.
    const { high, low } = md5Prefix(feature);
    for (let bit = 0; bit < 32; bit++) {
      weights[bit] = (weights[bit] ?? 0) + ((low >>> bit) & 1) * 2 - 1;
      weights[bit + 32] = (weights[bit + 32] ?? 0) + ((high >>> bit) & 1) * 2 - 1;
    }
  }
  let fingerprint = 0n;
  for (let bit = 0; bit < 64; bit++) if ((weights[bit] ?? 0) > 0) fingerprint |= 1n << BigInt(bit);
  return fingerprint.toString(16).padStart(16, '0');
}

export function hammingDistance(a: string, b: string): number {
  let diff = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let count = 0;
  while (diff > 0n) {
    count += Number(diff & 1n);
    diff >>= 1n;
  }
  return count;
}

/**
 * The 8 one-byte bands of a fingerprint. Two fingerprints within 7 bits share at least one band
 * (pigeonhole), so a store can find near-duplicates by exact band lookups.
 */
export function fingerprintBands(fingerprint: string): number[] {
  const bands: number[] = [];
  for (let i = 0; i < 8; i++) bands.push(parseInt(fingerprint.slice(i * 2, i * 2 + 2), 16));
  return bands;
}
