// Attachment hashes and fuzzy body fingerprints.
// - SHA-256 of every attachment, checked against a blocklist (operator entries and hashes learned
//   from virus and spam verdicts).
// - A 64-bit simhash over the words and 3-word shingles of the normalised body text: near-duplicate texts (a
//   name or a number changed) differ in few bits, so known spam matches within a Hamming distance.
// - Bulk: the same fingerprint sent by many different identities within a window is a campaign.
import { createHash } from 'node:crypto';
import { BoundedMemo } from '../bounded-memo.js';
import { md5Prefix } from './md5-prefix.js';
export type { BlockedHash, FingerprintStore, FuzzyMatch, HashSource } from '../ports/fingerprints.js';

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Lower-cases, drops URLs, e-mail addresses and digits (campaigns vary them per recipient),
 * keeps letters only, and returns the words: in each whitespace-separated token that holds no
 * '@', up to its first "http://" or "https://", every run of letters (Unicode category L) longer
 * than one UTF-16 unit.
 *
 * One pass over each token instead of a regular expression with a Unicode property over the whole
 * text and another per token, which cost a fifth of a 2 KB message's scan; the words are the same
 * (test/core/scan/fingerprint.test.ts compares them with those expressions).
 */
export function normaliseWords(text: string): string[] {
  const lower = text.toLowerCase();
  const words: string[] = [];
  let at = 0;
  while (at < lower.length) {
    while (at < lower.length && isSpace(lower.charCodeAt(at))) at += 1;
    let end = at;
    while (end < lower.length && !isSpace(lower.charCodeAt(end))) end += 1;
    if (end > at) tokenWords(lower, at, end, words);
    at = end;
  }
  return words;
}

/** The words of the token lower[start, end): none if it holds an '@', else its letter runs up to a link. */
function tokenWords(lower: string, start: number, end: number, words: string[]): void {
  let cut = end;
  for (let i = start; i < end; i += 1) {
    const code = lower.charCodeAt(i);
    if (code === 0x40) return; // '@': an address, or part of one
    // "http://" or "https://": all of it within the token, as white space ends a token.
    if (code === 0x68 && cut === end && lower.startsWith('http', i) && (lower.startsWith('://', i + 4) || lower.startsWith('s://', i + 4))) cut = i;
  }
  let run = -1;
  for (let i = start; i < cut; i += 1) {
    const code = lower.charCodeAt(i);
    const next = code >= 0xd800 && code <= 0xdbff ? lower.charCodeAt(i + 1) : 0;
    const units = next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
    if (isLetter(lower, i, code, units)) {
      if (run < 0) run = i;
    } else if (run >= 0) {
      if (i - run > 1) words.push(lower.slice(run, i));
      run = -1;
    }
    i += units - 1;
  }
  if (run >= 0 && cut - run > 1) words.push(lower.slice(run, cut));
}

/**
 * Whether a UTF-16 unit from 0x80 on matches `pattern` (one character), looked up once per unit
 * and kept in a table: outside ASCII, texts use few distinct units.
 */
function unitTable(pattern: RegExp): (code: number) => boolean {
  // 0: not yet known, 1: matches, 2: does not.
  const known = new Uint8Array(0x10000);
  return (code) => {
    if (!known[code]) known[code] = pattern.test(String.fromCharCode(code)) ? 1 : 2;
    return known[code] === 1;
  };
}

const isWideSpace = unitTable(/^\s$/);
const LETTER = /^\p{L}$/u;
const isWideLetter = unitTable(LETTER);

/** White space as /\s/ has it. */
function isSpace(code: number): boolean {
  return code < 0x80 ? code === 0x20 || (code >= 0x09 && code <= 0x0d) : isWideSpace(code);
}

/** Whether the code point at `at` of `text` (`units` long: a surrogate pair is 2) is a letter. */
function isLetter(text: string, at: number, code: number, units: number): boolean {
  if (code < 0x80) return code >= 0x61 ? code <= 0x7a : code >= 0x41 && code <= 0x5a;
  return units === 2 ? LETTER.test(text.slice(at, at + 2)) : isWideLetter(code);
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
 * effect small, shingles keep some word order), or null when it has fewer than `minWords` words:
 * bit i is set when more than half of the features have bit i of their hash set. */
export function fuzzyFingerprint(text: string, minWords: number): string | null {
  const words = normaliseWords(text).slice(0, MAX_FINGERPRINT_WORDS);
  if (words.length < Math.max(minWords, SHINGLE)) return null;
  // Per bit, how many features have it set: a column of counters for each 32-bit half of the
  // feature's MD5 prefix (big-endian; BigInt shifts cost ten times more).
  const low = new BitColumns();
  const high = new BitColumns();
  const add = (digest: { high: number; low: number }): void => {
    low.add(digest.low);
    high.add(digest.high);
  };
  for (const word of words) add(word.length > REMEMBERED_WORD_UNITS ? md5Prefix(word) : wordHashes.get(word));
  // The shingles of SHINGLE (3) words, joined by a space.
  for (let i = 0; i + SHINGLE <= words.length; i++) add(md5Prefix(`${words[i]} ${words[i + 1]} ${words[i + 2]}`));
  const hex = (columns: BitColumns) => columns.majority().toString(16).padStart(8, '0');
  return hex(high) + hex(low);
}

/** Longest word (UTF-16 units) whose hash is remembered, so that the memory held stays small whatever a message holds. */
const REMEMBERED_WORD_UNITS = 24;
/**
 * MD5 prefixes of words, remembered (20,000 at most): mail repeats its vocabulary from message to
 * message, and a lookup costs a fraction of the hash. Shingles are rarely seen twice and are
 * hashed each time.
 */
const wordHashes = new BoundedMemo(20_000, md5Prefix);

/** How many word hashes are remembered now (for tests of the bounds). */
export function rememberedWordHashes(): number {
  return wordHashes.size;
}

/**
 * 32 counters, one per bit of the words added, kept as bit planes: plane k holds bit k of every
 * counter, and adding a word is a ripple-carry addition of all 32 counters at once (a few
 * operations a word where counting bit by bit took 32 read-modify-writes). Counts up to 2^18:
 * twice MAX_FINGERPRINT_WORDS features fit.
 */
class BitColumns {
  private readonly planes = new Int32Array(18);
  /** Words added. */
  private added = 0;

  add(word: number): void {
    this.added += 1;
    let carry = word | 0;
    for (let k = 0; carry !== 0 && k < this.planes.length; k++) {
      const plane = this.planes[k] as number;
      this.planes[k] = plane ^ carry;
      carry = plane & carry;
    }
  }

  /** The 32-bit word whose bit i is set when counter i is more than half of the words added. */
  majority(): number {
    let word = 0;
    for (let bit = 0; bit < 32; bit++) {
      let count = 0;
      for (let k = 0; k < this.planes.length; k++) count += (((this.planes[k] as number) >>> bit) & 1) << k;
      if (count * 2 > this.added) word |= 1 << bit;
    }
    return word >>> 0;
  }
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
