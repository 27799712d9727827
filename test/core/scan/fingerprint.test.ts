// Fuzzy fingerprints of near-duplicate texts, and the SQLite fingerprint store.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { fuzzyFingerprint, hammingDistance, normaliseWords, rememberedWordHashes } from '../../../core/scan/fingerprint.js';
import { seededRandom as random } from '../../helpers/random.js';

const campaign = (name: string, amount: string, link: string): string =>
  `Dear ${name}, we are pleased to inform you that your email address was selected in our annual international
   promotion and you have won ${amount} dollars. To receive your winnings please reply with your full name, home
   address, telephone number and the details of your bank account so that our agent can arrange the transfer of
   the funds to you without delay. Visit ${link} for more information. Congratulations once again from the whole
   promotion team, and remember to keep this notice confidential until your claim has been processed completely.`;

const newsletter = `Our quarterly report is ready. Revenue grew in every region, the new warehouse opened on
  schedule, and the engineering team shipped the mobile application that customers have been asking for since
  spring. Thank you to everybody who contributed to these results; the full report is attached to this message.`;

describe('fuzzyFingerprint', () => {
  it('gives near-duplicate texts (name, amount, link changed) fingerprints within a few bits', () => {
    const a = fuzzyFingerprint(campaign('John', '1,000,000', 'http://a.example/x?id=1'), 20);
    const b = fuzzyFingerprint(campaign('Mary Smith', '2,500,000', 'http://b.example/y?id=2'), 20);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(b).toMatch(/^[0-9a-f]{16}$/);
    expect(hammingDistance(a ?? '', b ?? '')).toBeLessThanOrEqual(5);
  });

  it('gives a one-word edit a close fingerprint and an unrelated text a distant one', () => {
    const base = campaign('John', '1', 'x');
    const edited = base.replace('annual', 'yearly');
    const a = fuzzyFingerprint(base, 20) ?? '';
    expect(hammingDistance(a, fuzzyFingerprint(edited, 20) ?? '')).toBeLessThanOrEqual(7);
    expect(hammingDistance(a, fuzzyFingerprint(newsletter, 20) ?? '')).toBeGreaterThan(10);
  });

  it('gives no fingerprint to a short text', () => {
    expect(fuzzyFingerprint('ok, thanks!', 20)).toBeNull();
  });
});

describe('fuzzyFingerprint across releases', () => {
  it('gives the same fingerprint for the same text as every earlier release (learned fingerprints keep matching after an upgrade)', () => {
    const text = 'Dear friend, you have won one million dollars in the international lottery; send your bank details today to claim the prize before Friday';
    expect(fuzzyFingerprint(text, 10)).toBe('6f94816cc5b961b7');
  });
});

describe('normaliseWords against its definition', () => {
  /** The words by the regular expressions the function was first written with. */
  const byExpressions = (text: string): string[] =>
    text
      .toLowerCase()
      .split(/\s+/)
      .map((token) => (token.includes('@') ? '' : token.replace(/https?:\/\/.*$/, '')))
      .join(' ')
      .replace(/[^\p{L}]+/gu, ' ')
      .split(' ')
      .filter((word) => word.length > 1);

  // Pieces texts are made of: letters of several scripts and planes, digits, punctuation,
  // Unicode spaces, addresses, links, a lone surrogate of each kind, letters without a lower case.
  const pieces = [
    'word', 'Straße', 'ÄRGER', 'İstanbul', 'цены', 'Ωμέγα', '東京', 'ªº', 'ǅ', '𝒜𝒷𝒸', '𝓂', 'a', 'x', '42', '1,000', '—', '!', '.', '-',
    ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2003', '\u3000', '\u2028', '\ufeff',
    'someone@example.com', '@', 'http://a.example/x', 'https://b.example/y?id=2', 'HTTP://C.EXAMPLE', 'http', 'https:/', 'xhttp://y', 'mailto:', 'ab\ud835', '\udc9c', '\ud835\udc9c',
    '😀', 'e\u0301', 'ﬁ',
  ];

  it('gives the words those expressions give, for prose and for 2,000 texts made of awkward pieces', () => {
    expect(normaliseWords(newsletter)).toEqual(byExpressions(newsletter));
    expect(normaliseWords(campaign('John', '1,000,000', 'http://a.example/x?id=1'))).toEqual(byExpressions(campaign('John', '1,000,000', 'http://a.example/x?id=1')));
    const next = random(20261203);
    for (let n = 0; n < 2_000; n += 1) {
      const text = Array.from({ length: 1 + Math.floor(next() * 30) }, () => pieces[Math.floor(next() * pieces.length)] ?? '').join(next() < 0.5 ? '' : ' ');
      expect(normaliseWords(text), JSON.stringify(text)).toEqual(byExpressions(text));
    }
  });
});

describe('fuzzyFingerprint against its definition', () => {
  /**
   * The simhash by its definition, written independently of the product's bit arithmetic: every
   * word and 3-word shingle made into a string and hashed with OpenSSL's MD5; bit i of the
   * fingerprint (i = 0 the lowest of the 64-bit big-endian prefix) is bit i % 8 of digest byte
   * 7 - ⌊i / 8⌋, set when more features have it set than not.
   */
  const reference = (text: string, minWords: number): string | null => {
    const words = normaliseWords(text).slice(0, 20_000);
    if (words.length < Math.max(minWords, 3)) return null;
    const features = [...words, ...words.slice(0, -2).map((word, i) => `${word} ${words[i + 1]} ${words[i + 2]}`)];
    const digests = features.map((feature) => createHash('md5').update(feature).digest());
    const bytes = Buffer.alloc(8);
    for (let i = 0; i < 64; i += 1) {
      const set = digests.filter((digest) => ((digest[7 - Math.floor(i / 8)] ?? 0) >> i % 8) & 1).length;
      if (set * 2 > digests.length) bytes[7 - Math.floor(i / 8)] = (bytes[7 - Math.floor(i / 8)] ?? 0) | (1 << i % 8);
    }
    return bytes.toString('hex');
  };

  it('is the simhash of every word and shingle hashed by OpenSSL, for prose, other scripts, long words and the word limit', () => {
    const texts = [
      newsletter,
      campaign('John', '1', 'x').repeat(3) + newsletter,
      'Größere Straßen führen über die Brücke; Ärger über Öl und Übermut. '.repeat(5),
      'Цены на билеты выросли, но поезда ходят чаще и быстрее, чем прежде. '.repeat(4),
      '東京 大阪 京都 名古屋 札幌 福岡 神戸 横浜 仙台 広島 '.repeat(3),
      // Letters outside the Basic Multilingual Plane: four bytes each in UTF-8.
      '𝒜𝒷𝒸 𝒹ℯ𝒻 𝑔𝒽𝒾 𝒿𝓀𝓁 𝓂𝓃ℴ 𝓅𝓆𝓇 𝓈𝓉𝓊 𝓋𝓌𝓍 𝓎𝓏𝒜 '.repeat(3),
      // Words too long for the JavaScript MD5's buffer: OpenSSL hashes those.
      `${'a'.repeat(5_000)} ${'b'.repeat(1_100)} ${newsletter} ${'ü'.repeat(2_000)}`,
      // Past the 20,000-word cut: the words after it count for nothing.
      'alpha beta gamma delta '.repeat(5_001) + 'omega '.repeat(100),
    ];
    for (const text of texts) expect(fuzzyFingerprint(text, 20), text.slice(0, 40)).toBe(reference(text, 20));
    // The texts are not all alike: the comparison is not of one fingerprint with itself.
    expect(new Set(texts.map((text) => fuzzyFingerprint(text, 20))).size).toBe(texts.length);
  });
});

describe('the word hashes fuzzyFingerprint remembers', () => {
  /** `count` distinct words of `length` letters, from a counter written in base 26. */
  const distinctWords = (count: number, length: number, offset = 0): string =>
    Array.from({ length: count }, (_, n) => {
      let word = '';
      for (let value = n + offset; word.length < length; value = Math.floor(value / 26)) word += String.fromCharCode(97 + (value % 26));
      return word;
    }).join(' ');

  it('keeps no long word, so that a message of long words holds no memory after its scan', () => {
    const before = rememberedWordHashes();
    fuzzyFingerprint(distinctWords(2_000, 40), 20);
    expect(rememberedWordHashes()).toBe(before);
  });

  it('holds at most 20,000 words, however many distinct words the messages bring', () => {
    fuzzyFingerprint(distinctWords(15_000, 8), 20);
    fuzzyFingerprint(distinctWords(15_000, 8, 15_000), 20);
    expect(rememberedWordHashes()).toBeGreaterThan(0);
    expect(rememberedWordHashes()).toBeLessThanOrEqual(20_000);
  });
});
