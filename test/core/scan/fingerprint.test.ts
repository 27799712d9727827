// Fuzzy fingerprints of near-duplicate texts, and the SQLite fingerprint store.
import { describe, expect, it } from 'vitest';
import { fuzzyFingerprint, hammingDistance } from '../../../core/scan/fingerprint.js';

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
