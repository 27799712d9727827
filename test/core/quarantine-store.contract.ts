// The contract every QuarantineStore backend keeps (SQLite, DynamoDB): one entry per message
// however often it is added, entries back as stored, lists newest first per tenant or for all,
// `before` and `limit`, and the retention sweep oldest first.
import { describe, expect, it } from 'vitest';
import type { QuarantineEntry, QuarantineStore } from '../../core/scan/quarantine.js';

const entry = (messageId: string, tenantId: string, quarantinedAt: number): QuarantineEntry => ({
  messageId,
  tenantId,
  userId: `u-${tenantId}`,
  envelope: {
    messageId,
    tenantId,
    userId: `u-${tenantId}`,
    identity: 'alice@acme.example',
    mailFrom: 'alice@acme.example',
    rcptTo: ['bob@example.org'],
    blobKey: `2026/11/25/${messageId}.eml`,
    size: 1234,
    receivedAt: quarantinedAt - 1000,
    clientIp: '192.0.2.7',
    helo: 'client.example',
  },
  kind: 'spam',
  symbols: [{ name: 'GTUBE', score: 1000, evidence: 'GTUBE string in body' }, { name: 'BULK_CAMPAIGN', evidence: { identities: 12 } }, { name: 'NO_EVIDENCE' }],
  subject: `subject ${messageId}`,
  blobKey: `2026/11/25/${messageId}.eml`,
  quarantinedAt,
});

export function quarantineStoreContract(backend: string, open: () => Promise<QuarantineStore>): void {
  describe(`QuarantineStore contract: ${backend}`, () => {
    it('keeps one entry per message, as stored, and removes it', async () => {
      const store = await open();
      await store.add(entry('Q1', 't1', 5000));
      await store.add({ ...entry('Q1', 't1', 6000), kind: 'virus' });
      expect(await store.get('Q1')).toEqual(entry('Q1', 't1', 5000));
      expect(await store.list({})).toHaveLength(1);
      await store.remove('Q1');
      expect(await store.get('Q1')).toBeUndefined();
      await store.remove('Q1');
    });

    it('lists newest first, per tenant or for all, before a time and up to a limit; sweeps oldest first', async () => {
      const store = await open();
      for (let i = 0; i < 6; i++) await store.add(entry(`A${i}`, i % 2 === 0 ? 't1' : 't2', 1000 + i * 100));
      await store.add({ ...entry('B0', 't1', 1000), subject: null });
      expect((await store.list({})).map((e) => e.messageId)).toEqual(['A5', 'A4', 'A3', 'A2', 'A1', 'B0', 'A0']);
      expect((await store.list({ tenantId: 't1' })).map((e) => e.messageId)).toEqual(['A4', 'A2', 'B0', 'A0']);
      expect((await store.list({ tenantId: 't2', limit: 2 })).map((e) => e.messageId)).toEqual(['A5', 'A3']);
      expect((await store.list({ before: 1300 })).map((e) => e.messageId)).toEqual(['A2', 'A1', 'B0', 'A0']);
      expect((await store.list({ tenantId: 't1', before: 1200 })).map((e) => e.messageId)).toEqual(['B0', 'A0']);
      expect((await store.olderThan(1200, 10)).map((e) => e.messageId)).toEqual(['A0', 'B0', 'A1']);
      expect((await store.olderThan(1200, 2)).map((e) => e.messageId)).toEqual(['A0', 'B0']);
      expect((await store.get('B0'))?.subject).toBeNull();
    });
  });
}
