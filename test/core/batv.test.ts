import { describe, expect, it } from 'vitest';
import { batvStrip, batvTag, batvValidate, dayNumber, nextBatvKeyIndex, type BatvKey, type BatvReason } from '../../core/batv.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12); // day 20417
const key = (index: number, fill: number, retiredAt: number | null = null): BatvKey => ({ index, secret: Buffer.alloc(32, fill), createdAt: T0 - 30 * DAY, retiredAt });
const current = key(3, 1);
const retiredRecently = key(2, 2, T0 - 3 * DAY);
const retiredLongAgo = key(1, 3, T0 - 30 * DAY);
const keys = [current, retiredRecently, retiredLongAgo];

const tagged = batvTag('ann@example.com', current, T0);
const taggedByRetired = batvTag('ann@example.com', retiredRecently, T0 - 4 * DAY);
const taggedByLongRetired = batvTag('ann@example.com', retiredLongAgo, T0 - 31 * DAY);
// A tag made with our key but for a day beyond the validity window (e.g. a tagging clock set wrong).
const farFuture = batvTag('ann@example.com', current, T0 + 30 * DAY);
const unknownIndex = batvTag('ann@example.com', key(7, 9), T0);
const flipHash = (address: string): string => address.replace(/^(prvs=\d{4})(.)/, (_, head: string, c: string) => head + (c === '0' ? '1' : '0'));

describe('batvTag', () => {
  it('writes prvs=KDDDSSSSSS=local@domain with the expiry day mod 1000', () => {
    const expiry = String((dayNumber(T0) + 7) % 1000).padStart(3, '0');
    expect(tagged).toMatch(new RegExp(`^prvs=3${expiry}[0-9a-f]{6}=ann@example\\.com$`));
  });

  it('leaves the null sender and already tagged addresses alone', () => {
    expect(batvTag('', current, T0)).toBe('');
    expect(batvTag(tagged, current, T0)).toBe(tagged);
  });

  it('strips a tag back to the original address', () => {
    expect(batvStrip(tagged)).toBe('ann@example.com');
    expect(batvStrip('bob@example.com')).toBe('bob@example.com');
  });
});

describe('batvValidate', () => {
  const table: Array<[string, string, number, BatvReason]> = [
    ['a fresh tag', tagged, T0, 'valid'],
    ['a tag on its last valid day', tagged, T0 + 7 * DAY, 'valid'],
    ['a tag whose hex was upper-cased in transit', tagged.replace(/=([0-9a-f]{10})=/, (m) => m.toUpperCase()), T0, 'valid'],
    ['a tag on an address lower-cased in transit', batvTag('Ann@Example.com', current, T0).toLowerCase(), T0, 'valid'],
    ['a tag from a key retired within the grace period', taggedByRetired, T0, 'valid'],
    ['an untagged address', 'ann@example.com', T0, 'untagged'],
    ['a tag the day after expiry', tagged, T0 + 8 * DAY, 'expired'],
    ['a tag long expired', tagged, T0 + 200 * DAY, 'expired'],
    ['a tag dated beyond the validity window', farFuture, T0, 'too-far-in-future'],
    ['a tag with a wrong hash', flipHash(tagged), T0, 'bad-hash'],
    ['a tag moved onto another local part', tagged.replace('=ann@', '=bob@'), T0, 'bad-hash'],
    ['a tag moved onto another domain', tagged.replace('@example.com', '@example.org'), T0, 'bad-hash'],
    ['a tag whose date digits were changed', tagged.replace(/^prvs=3(\d{3})/, (_, d: string) => `prvs=3${String((Number(d) + 1) % 1000).padStart(3, '0')}`), T0, 'bad-hash'],
    ['a tag with a key index we never had', unknownIndex, T0, 'unknown-key'],
    ['a tag from a key retired beyond the grace period', taggedByLongRetired, T0, 'unknown-key'],
    ['a tag with too few hash digits', 'prvs=3123abcde=ann@example.com', T0, 'malformed'],
    ['a tag without an original address', 'prvs=3123abcdef=', T0, 'malformed'],
  ];
  for (const [name, address, now, reason] of table) {
    it(`${name}: ${reason}`, () => {
      expect(batvValidate(address, keys, now).reason).toBe(reason);
    });
  }

  it('reports the original address of a tagged one', () => {
    expect(batvValidate(tagged, keys, T0)).toEqual({ reason: 'valid', original: 'ann@example.com', keyIndex: 3 });
  });

  it('reads the 1000-day wrap of DDD correctly', () => {
    const nearWrap = Date.UTC(2026, 10, 25) + (999 - (dayNumber(T0) % 1000)) * DAY; // a day whose number ends in 999
    const address = batvTag('ann@example.com', current, nearWrap);
    expect(address).toMatch(/^prvs=3006/);
    expect(batvValidate(address, keys, nearWrap + 6 * DAY).reason).toBe('valid');
    expect(batvValidate(address, keys, nearWrap + 8 * DAY).reason).toBe('expired');
  });
});

describe('nextBatvKeyIndex', () => {
  it('walks forward from the current index, skipping indexes still in their grace period', () => {
    expect(nextBatvKeyIndex([], T0)).toBe(0);
    expect(nextBatvKeyIndex([current, key(4, 4, T0 - DAY)], T0)).toBe(5);
    expect(nextBatvKeyIndex([key(9, 1)], T0)).toBe(0);
  });
});
