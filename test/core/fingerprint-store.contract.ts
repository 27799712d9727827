// The contract every FingerprintStore backend keeps (SQLite, DynamoDB): near-duplicate spam found
// within a distance, distinct senders of a body counted within a window, blocked hashes by source
// with operator entries kept, and purging by age. Call `fingerprintStoreContract(name, open)`.
import { describe, expect, it } from 'vitest';
import { fuzzyFingerprint, sha256Hex, type FingerprintStore } from '../../core/scan/fingerprint.js';

const campaign = (name: string, amount: string, link: string): string =>
  `Dear ${name}, we are pleased to inform you that your email address was selected in our annual international
   promotion and you have won ${amount} dollars. To receive your winnings please reply with your full name, home
   address, telephone number and the details of your bank account so that our agent can arrange the transfer of
   the funds to you without delay. Visit ${link} for more information. Congratulations once again from the whole
   promotion team, and remember to keep this notice confidential until your claim has been processed completely.`;

const newsletter = `Our quarterly report is ready. Revenue grew in every region, the new warehouse opened on
  schedule, and the engineering team shipped the mobile application that customers have been asking for since
  spring. Thank you to everybody who contributed to these results; the full report is attached to this message.`;

export function fingerprintStoreContract(backend: string, open: () => Promise<FingerprintStore>): void {
  describe(`FingerprintStore contract: ${backend}`, () => {
  it('finds a near-duplicate of known spam and not an unrelated text', async () => {
    const store = await open();
    await store.addSpamFingerprint(fuzzyFingerprint(campaign('John', '1,000,000', 'http://a.example'), 20) ?? '', 1000);
    const variant = fuzzyFingerprint(campaign('Peter', '750,000', 'http://c.example/claim'), 20) ?? '';
    const match = await store.nearestSpamFingerprint(variant, 5);
    expect(match?.distance).toBeLessThanOrEqual(5);
    expect(await store.nearestSpamFingerprint(fuzzyFingerprint(newsletter, 20) ?? '', 5)).toBeUndefined();
  });

  it('counts distinct identities sending the same body within the window', async () => {
    const store = await open();
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
    const store = await open();
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
}
