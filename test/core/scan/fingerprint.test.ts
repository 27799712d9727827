// Fuzzy fingerprints of near-duplicate texts, and the SQLite fingerprint store.
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteFingerprintStore } from '../../../adapters/local/fingerprint-store.js';
import { fuzzyFingerprint, hammingDistance, sha256Hex } from '../../../core/scan/fingerprint.js';

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

describe('SqliteFingerprintStore', () => {
  it('finds a near-duplicate of known spam and not an unrelated text', async () => {
    const store = new SqliteFingerprintStore(openDatabase(':memory:'));
    await store.addSpamFingerprint(fuzzyFingerprint(campaign('John', '1,000,000', 'http://a.example'), 20) ?? '', 1000);
    const variant = fuzzyFingerprint(campaign('Peter', '750,000', 'http://c.example/claim'), 20) ?? '';
    const match = await store.nearestSpamFingerprint(variant, 5);
    expect(match?.distance).toBeLessThanOrEqual(5);
    expect(await store.nearestSpamFingerprint(fuzzyFingerprint(newsletter, 20) ?? '', 5)).toBeUndefined();
  });

  it('counts distinct identities sending the same body within the window', async () => {
    const store = new SqliteFingerprintStore(openDatabase(':memory:'));
    const fp = (name: string): string => fuzzyFingerprint(campaign(name, '5', 'http://x.example'), 20) ?? '';
    await store.recordSighting(fp('A'), 'user-1', 1000);
    await store.recordSighting(fp('B'), 'user-2', 2000);
    await store.recordSighting(fp('C'), 'user-2', 2500); // same identity again
    await store.recordSighting(fp('D'), 'user-3', 100); // outside the window
    await store.recordSighting(fuzzyFingerprint(newsletter, 20) ?? '', 'user-4', 2000);
    expect(await store.countSenders(fp('E'), 5, 500)).toBe(2);
    expect(await store.countSenders(fp('E'), 5, 0)).toBe(3);
    // Sightings are kept only as long as the bulk window needs them; learned spam stays longer.
    await store.addSpamFingerprint(fp('A'), 100);
    await store.purgeOlderThan({ learned: 50, sightings: 1500 });
    // user-1 (1000) and user-3 (100) are gone; user-2 (2000, 2500) remains.
    expect(await store.countSenders(fp('E'), 5, 0)).toBe(1);
    expect(await store.nearestSpamFingerprint(fp('A'), 0)).toBeDefined();
  });

  it('keeps blocked hashes by source; an operator entry is not replaced by a learned one; purge keeps operator entries', async () => {
    const store = new SqliteFingerprintStore(openDatabase(':memory:'));
    const hash = sha256Hex(Buffer.from('bad file'));
    await store.blockHash({ sha256: hash, source: 'operator', reason: 'known malware dropper', addedAt: 1 });
    await store.blockHash({ sha256: hash, source: 'spam', reason: 'learned', addedAt: 2 });
    await store.blockHash({ sha256: sha256Hex(Buffer.from('other')), source: 'virus', reason: 'learned', addedAt: 2 });
    expect(await store.findBlockedHashes([hash, sha256Hex(Buffer.from('fine'))])).toEqual([
      { sha256: hash, source: 'operator', reason: 'known malware dropper', addedAt: 1 },
    ]);
    await store.purgeOlderThan({ learned: 10, sightings: 10 });
    expect((await store.listBlockedHashes()).map((item) => item.source)).toEqual(['operator']);
  });
});
