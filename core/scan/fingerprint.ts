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

const SPACE = /^\s$/;
/** For each UTF-16 unit from 0x80 on: 0 not yet known, 1 white space (as /\s/ has it), 2 not. */
const bmpSpaces = new Uint8Array(0x10000);

function isSpace(code: number): boolean {
  if (code < 0x80) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  let known = bmpSpaces[code];
  if (!known) {
    known = SPACE.test(String.fromCharCode(code)) ? 1 : 2;
    bmpSpaces[code] = known;
  }
  return known === 1;
}

const LETTER = /^\p{L}$/u;
/** For each UTF-16 unit outside ASCII and the surrogates: 0 not yet known, 1 a letter, 2 not. */
const bmpLetters = new Uint8Array(0x10000);

/** Whether the code point at `at` (`units` long: a surrogate pair is 2) is a letter. */
function isLetter(token: string, at: number, code: number, units: number): boolean {
  if (code < 0x80) return code >= 0x61 ? code <= 0x7a : code >= 0x41 && code <= 0x5a;
  if (units === 2) return LETTER.test(token.slice(at, at + 2));
  let known = bmpLetters[code];
  if (!known) {
    known = LETTER.test(String.fromCharCode(code)) ? 1 : 2;
    bmpLetters[code] = known;
  }
  return known === 1;
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
  // Per bit, how many features have it set: a column of counters for each 32-bit half.
  const low = new BitColumns();
  const high = new BitColumns();
  const add = (feature: string): void => {
    // The first 64 bits of the feature's MD5, big-endian, as two 32-bit halves (BigInt shifts
    // cost ten times more); in JavaScript, a third of the cost of a call into OpenSSL each.
    const digest = md5Prefix(feature);
    low.add(digest.low);
    high.add(digest.high);
  };
  for (const word of words) {
    const digest = wordHash(word);
    low.add(digest.low);
    high.add(digest.high);
  }
  // The shingles of SHINGLE (3) words, joined by a space.
  for (let i = 0; i + SHINGLE <= words.length; i++) add(`${words[i]} ${words[i + 1]} ${words[i + 2]}`);
  const features = words.length * 2 - (SHINGLE - 1);
  const hex = (columns: BitColumns) => columns.majority(features).toString(16).padStart(8, '0');
  return hex(high) + hex(low);
}

/** Longest word (UTF-16 units) whose hash is remembered, so that the memory held stays small whatever a message holds. */
const REMEMBERED_WORD_UNITS = 24;
/** Hashes remembered at most; all are forgotten when full. */
const REMEMBERED_WORDS = 20_000;
const wordHashes = new Map<string, { high: number; low: number }>();

/** How many word hashes are remembered now (for tests of the bounds). */
export function rememberedWordHashes(): number {
  return wordHashes.size;
}

/**
 * md5Prefix of a word, remembered: mail repeats its vocabulary from message to message, and a
 * lookup costs a fraction of the hash. Shingles are rarely seen twice and are hashed each time.
 */
function wordHash(word: string): { high: number; low: number } {
  if (word.length > REMEMBERED_WORD_UNITS) return md5Prefix(word);
  let digest = wordHashes.get(word);
  if (!digest) {
    digest = md5Prefix(word);
    if (wordHashes.size >= REMEMBERED_WORDS) wordHashes.clear();
    wordHashes.set(word, digest);
  }
  return digest;
}

/**
 * 32 counters, one per bit of the words added, kept as bit planes: plane k holds bit k of every
 * counter, and adding a word is a ripple-carry addition of all 32 counters at once (a few
 * operations a word where counting bit by bit took 32 read-modify-writes). Counts up to 2^18:
 * twice MAX_FINGERPRINT_WORDS features fit.
 */
class BitColumns {
  private readonly planes = new Int32Array(18);

  add(word: number): void {
    let carry = word | 0;
    for (let k = 0; carry !== 0 && k < this.planes.length; k++) {
      const plane = this.planes[k] as number;
      this.planes[k] = plane ^ carry;
      carry = plane & carry;
    }
  }

  /** The 32-bit word whose bit i is set when counter i is more than half of `total`. */
  majority(total: number): number {
    let word = 0;
    for (let bit = 0; bit < 32; bit++) {
      let count = 0;
      for (let k = 0; k < this.planes.length; k++) count += (((this.planes[k] as number) >>> bit) & 1) << k;
      if (count * 2 > total) word |= 1 << bit;
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
