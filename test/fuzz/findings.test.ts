// Regressions for what the fuzzers found, each reduced to its smallest form.
import { describe, expect, it } from 'vitest';
import { fuzzyFingerprint, normaliseWords } from '../../core/scan/fingerprint.js';

describe('fuzz findings in the MIME path', () => {
  it('a 100 KB token without an @ is normalised in linear time (the e-mail pattern used to backtrack quadratically)', () => {
    const started = Date.now();
    expect(normaliseWords(`hello ${'x'.repeat(100_000)} world`)).toEqual(['hello', 'xxxxxxxxxx'.repeat(10_000), 'world']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('addresses and links are still dropped from the words', () => {
    expect(normaliseWords('Write to bob@example.org or see https://example.org/x?a=1 now')).toEqual(['write', 'to', 'or', 'see', 'now']);
  });

  it('a body of 1.5 MB of words is fingerprinted in about a second, not ten (words past 20,000 are not hashed)', () => {
    const text = Array.from({ length: 250_000 }, (_, i) => `w${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + ((i * 7) % 26))}`).join(' ');
    const started = Date.now();
    expect(fuzzyFingerprint(text, 20)).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
