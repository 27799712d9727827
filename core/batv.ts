// Bounce Address Tag Validation, draft-levine-smtp-batv-01, "prvs" scheme:
//   prvs=KDDDSSSSSS=local@domain
// K: key index (0-9), DDD: expiry day (days since 1970-01-01, mod 1000), SSSSSS: the first three
// bytes, in hex, of HMAC-SHA1(key, "KDDD" + original address). A bounce (null sender) must come
// back to a tagged address we made recently: anything else is backscatter.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { BatvKey } from './ports/batv-keys.js';
export type { BatvKey, BatvKeyStore } from './ports/batv-keys.js';

const DAY_MS = 86_400_000;

export interface BatvPolicy {
  /** A tag expires this many days after the message left. */
  validDays: number;
  /** Retired keys are accepted for this many days after retirement. */
  graceDays: number;
}

export const defaultBatvPolicy: BatvPolicy = { validDays: 7, graceDays: 7 };

export type BatvReason = 'valid' | 'untagged' | 'malformed' | 'unknown-key' | 'bad-hash' | 'expired' | 'too-far-in-future';

export interface BatvVerdict {
  reason: BatvReason;
  /** The address without its tag (the address itself when untagged). */
  original: string;
  keyIndex?: number;
}

const TAG_RE = /^prvs=([0-9])([0-9]{3})([0-9a-f]{6})=(.+)$/i;

export const dayNumber = (now: number): number => Math.floor(now / DAY_MS);

function hashOf(key: BatvKey, kddd: string, address: string): string {
  // The address is lower-cased before hashing: some MTAs lower-case the whole bounce address,
  // and a tag that breaks on that would refuse real bounces. Only we validate our tags.
  return createHmac('sha1', key.secret).update(kddd + address.toLowerCase()).digest().subarray(0, 3).toString('hex');
}

export function isBatvTagged(address: string): boolean {
  return /^prvs=/i.test(address);
}

/** `local@domain` → `prvs=KDDDSSSSSS=local@domain`; the null sender and tagged addresses are left alone. */
export function batvTag(address: string, key: BatvKey, now: number, policy: BatvPolicy = defaultBatvPolicy): string {
  if (address === '' || isBatvTagged(address) || !address.includes('@')) return address;
  const kddd = `${key.index}${String((dayNumber(now) + policy.validDays) % 1000).padStart(3, '0')}`;
  return `prvs=${kddd}${hashOf(key, kddd, address)}=${address}`;
}

/** Removes a prvs tag if there is one (for forwarding a bounce to the original sender). */
export function batvStrip(address: string): string {
  const match = TAG_RE.exec(address);
  return match?.[4] ?? address;
}

/**
 * Validates a bounce recipient. Checks, in order: the tag's shape, the key index, the hash
 * (constant time), then the date; so a forged tag reads "bad-hash" whatever its date.
 */
export function batvValidate(address: string, keys: readonly BatvKey[], now: number, policy: BatvPolicy = defaultBatvPolicy): BatvVerdict {
  if (!isBatvTagged(address)) return { reason: 'untagged', original: address };
  const match = TAG_RE.exec(address);
  const [, k, ddd, hash, original] = match ?? [];
  if (!k || !ddd || !hash || !original || !original.includes('@')) return { reason: 'malformed', original: address };
  const keyIndex = Number(k);
  const key = keys.find((candidate) => candidate.index === keyIndex && usable(candidate, now, policy));
  if (!key) return { reason: 'unknown-key', original, keyIndex };
  const expected = Buffer.from(hashOf(key, k + ddd, original), 'latin1');
  const given = Buffer.from(hash.toLowerCase(), 'latin1');
  if (!timingSafeEqual(expected, given)) return { reason: 'bad-hash', original, keyIndex };
  // DDD wraps every 1000 days: read it as the nearest day to today, within half the cycle.
  const ahead = (Number(ddd) - (dayNumber(now) % 1000) + 1000) % 1000;
  if (ahead > 500) return { reason: 'expired', original, keyIndex };
  if (ahead > policy.validDays) return { reason: 'too-far-in-future', original, keyIndex };
  return { reason: 'valid', original, keyIndex };
}

function usable(key: Pick<BatvKey, 'retiredAt'>, now: number, policy: BatvPolicy): boolean {
  return key.retiredAt === null || now - key.retiredAt <= policy.graceDays * DAY_MS;
}

/** Picks the index for a new key: one not held by any key still usable. */
export function nextBatvKeyIndex(existing: ReadonlyArray<Pick<BatvKey, 'index' | 'retiredAt'>>, now: number, policy: BatvPolicy = defaultBatvPolicy): number {
  const held = new Set(existing.filter((key) => usable(key, now, policy)).map((key) => key.index));
  const current = existing.find((key) => key.retiredAt === null);
  // Walk forward from the current index so that a just-retired index is reused last.
  const start = current ? current.index + 1 : 0;
  for (let step = 0; step < 10; step += 1) {
    const index = (start + step) % 10;
    if (!held.has(index)) return index;
  }
  throw new Error('all ten BATV key indexes are in use by keys within their grace period; wait for the oldest to expire before rotating again');
}

/** Symbols the bounce listener names when it refuses a bounce, one per reason. */
export const batvSymbols: Record<Exclude<BatvReason, 'valid'>, string> = {
  untagged: 'BATV_UNTAGGED',
  malformed: 'BATV_MALFORMED',
  'unknown-key': 'BATV_UNKNOWN_KEY',
  'bad-hash': 'BATV_BAD_HASH',
  expired: 'BATV_EXPIRED',
  'too-far-in-future': 'BATV_TOO_FAR_IN_FUTURE',
};
