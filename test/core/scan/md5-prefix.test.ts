import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5Prefix } from '../../../core/scan/md5-prefix.js';

/** The first 64 bits of MD5 as OpenSSL computes it over the string's UTF-8 (Buffer.from's). */
function expected(text: string): { high: number; low: number } {
  const digest = hash('md5', text, 'buffer');
  return { high: digest.readUInt32BE(0), low: digest.readUInt32BE(4) };
}

/** A deterministic generator, so that a failure names the same strings on every run. */
function* strings(count: number): Generator<string> {
  let seed = 20261202;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < count; i++) {
    let text = '';
    const length = next() % 90;
    for (let j = 0; j < length; j++) {
      const kind = next() % 4;
      text += String.fromCharCode(kind === 0 ? next() % 0x80 : kind === 1 ? 0x80 + (next() % 0x780) : kind === 2 ? next() % 0x10000 : 0xd800 + (next() % 0x800));
    }
    yield text;
  }
}

describe('md5Prefix', () => {
  it('is MD5 (RFC 1321 test suite)', () => {
    // RFC 1321, appendix A.5: the first 16 hex digits of each digest.
    expect(md5Prefix('')).toEqual({ high: 0xd41d8cd9, low: 0x8f00b204 });
    expect(md5Prefix('abc')).toEqual({ high: 0x90015098, low: 0x3cd24fb0 });
    expect(md5Prefix('message digest')).toEqual({ high: 0xf96b697d, low: 0x7cb7938d });
    expect(md5Prefix('12345678901234567890123456789012345678901234567890123456789012345678901234567890')).toEqual({ high: 0x57edf4a2, low: 0x2be3c955 });
  });

  it('agrees with OpenSSL at every padding boundary (one block, two blocks, more)', () => {
    for (const length of [1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000]) {
      const text = 'x'.repeat(length);
      expect(md5Prefix(text), `length ${length}`).toEqual(expected(text));
    }
  });

  it('hashes the UTF-8 of the string: two- and three-byte characters, astral ones, lone surrogates', () => {
    for (const text of ['größe straße', 'ценник', '日本語のテキスト', '\u{1F600} emoji \u{10FFFF}', 'lone \ud800 high', 'lone \udc00 low', 'ends high\ud800', '\udbff\udfff']) {
      expect(md5Prefix(text), JSON.stringify(text)).toEqual(expected(text));
    }
  });

  it('agrees with OpenSSL on 3,000 generated strings, long ones after short ones', () => {
    const mismatches: string[] = [];
    for (const text of strings(3000)) {
      const ours = md5Prefix(text);
      const theirs = expected(text);
      if (ours.high !== theirs.high || ours.low !== theirs.low) mismatches.push(JSON.stringify(text));
    }
    expect(mismatches).toEqual([]);
    // After a long string, a short one must not see its leftovers.
    md5Prefix('y'.repeat(1000));
    expect(md5Prefix('short')).toEqual(expected('short'));
  });

  it('hashes texts up to its buffer and past it (a token of thousands of letters) alike', () => {
    for (const text of ['a'.repeat(1023), 'a'.repeat(1024), 'a'.repeat(1025), '語'.repeat(1024), '語'.repeat(1025), '\u{1F600}'.repeat(512), 'b'.repeat(1_000_000)]) {
      expect(md5Prefix(text), `${text.length} units`).toEqual(expected(text));
    }
  });
});
