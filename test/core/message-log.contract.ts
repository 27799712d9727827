// The contract every MessageLog backend keeps (SQLite, DynamoDB): events in order with the status
// they set, search by tenant/user/sender/recipient/status/time, newest first, in pages with an
// opaque cursor, and purging by age. Call `messageLogContract(name, open)` from a backend's test.
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError, type MessageLog } from '../../core/stores.js';

export interface MessageLogFixture {
  log: MessageLog;
  close(): Promise<void> | void;
}

export function messageLogContract(backend: string, open: (clock: { now(): number }) => Promise<MessageLogFixture>): void {
  describe(`MessageLog contract: ${backend}`, () => {
    let fixture: MessageLogFixture | undefined;
    let now = 1_700_000_000_000;
    const setup = async () => {
      now = 1_700_000_000_000;
      fixture = await open({ now: () => now });
      const log = fixture.log;
      const add = (id: string, receivedAt: number, fields: Partial<{ mailFrom: string; rcptTo: string[]; tenantId: string | null; userId: string }> = {}) =>
        log.create({
          id,
          tenantId: fields.tenantId === undefined ? 't1' : fields.tenantId,
          userId: fields.userId ?? 'u1',
          identity: 'alice@acme.test',
          mailFrom: fields.mailFrom ?? 'alice@acme.test',
          rcptTo: fields.rcptTo ?? ['bob@example.org'],
          size: 100,
          subject: 'hi',
          status: 'queued',
          receivedAt,
        });
      return { log, add, setNow: (value: number) => (now = value) };
    };
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });

    it('records events in order and moves the status with them', async () => {
      const { log, add, setNow } = await setup();
      await add('M1', 1000);
      setNow(2000);
      await log.addEvent('M1', 'received', { clientIp: '192.0.2.1' });
      setNow(3000);
      await log.addEvent('M1', 'deferred', { response: '451 4.3.0 try later', attempt: 1 }, 'deferred');
      await log.addEvent('M1', 'dsn-sent', { nested: { list: [1, 'two'] } });
      setNow(4000);
      await log.addEvent('M1', 'delivered', { response: '250 ok' }, 'delivered');
      const found = await log.get('M1');
      expect(found?.message).toEqual({
        id: 'M1',
        tenantId: 't1',
        userId: 'u1',
        identity: 'alice@acme.test',
        mailFrom: 'alice@acme.test',
        rcptTo: ['bob@example.org'],
        size: 100,
        subject: 'hi',
        status: 'delivered',
        receivedAt: 1000,
        updatedAt: 4000,
      });
      expect(found?.events).toEqual([
        { at: 2000, event: 'received', detail: { clientIp: '192.0.2.1' } },
        { at: 3000, event: 'deferred', detail: { response: '451 4.3.0 try later', attempt: 1 } },
        { at: 3000, event: 'dsn-sent', detail: { nested: { list: [1, 'two'] } } },
        { at: 4000, event: 'delivered', detail: { response: '250 ok' } },
      ]);
      expect(await log.get('nope')).toBeUndefined();
    });

    it('records a late queued event without moving a message back from a final status', async () => {
      const { log, add, setNow } = await setup();
      await add('M1', 1000);
      setNow(2000);
      // Delivery took the job before the stage that queued it logged so.
      await log.addEvent('M1', 'delivered', { response: '250 ok' }, 'delivered');
      setNow(3000);
      await log.addEvent('M1', 'scanned', { kind: 'clean' }, 'queued');
      const found = await log.get('M1');
      expect(found?.message.status).toBe('delivered');
      expect(found?.events.map((event) => event.event)).toEqual(['delivered', 'scanned']);
      // Other statuses still move it: a delivered message can bounce later, a deferred one is queued again.
      await log.addEvent('M1', 'bounce-received', {}, 'bounced');
      expect((await log.get('M1'))?.message.status).toBe('bounced');
      await add('M2', 1000);
      await log.addEvent('M2', 'scan-deferred', {}, 'deferred');
      await log.addEvent('M2', 'scanned', {}, 'queued');
      expect((await log.get('M2'))?.message.status).toBe('queued');
    });

    it('keeps a message without tenant or subject, and the null sender', async () => {
      const { log } = await setup();
      await log.create({ id: 'DSN1', tenantId: null, userId: null, identity: null, mailFrom: '', rcptTo: ['a@b.example'], size: 1, subject: null, status: 'queued', receivedAt: 5 });
      expect((await log.get('DSN1'))?.message).toMatchObject({ tenantId: null, userId: null, identity: null, mailFrom: '', subject: null });
    });

    it('searches by tenant, user, sender, recipient (case-insensitively), status and time range, newest first, in pages', async () => {
      const { log, add } = await setup();
      for (let i = 0; i < 5; i++) await add(`A${i}`, 1000 + i, { rcptTo: [`r${i}@Example.org`] });
      await add('B0', 1010, { tenantId: 't2', mailFrom: 'x@globex.test', userId: 'u2' });
      await log.addEvent('A3', 'bounced', {}, 'bounced');
      const page1 = await log.search({ tenantId: 't1', limit: 2 });
      expect(page1.items.map((m) => m.id)).toEqual(['A4', 'A3']);
      const page2 = await log.search({ tenantId: 't1', limit: 2, cursor: page1.nextCursor ?? '' });
      expect(page2.items.map((m) => m.id)).toEqual(['A2', 'A1']);
      const page3 = await log.search({ tenantId: 't1', limit: 2, cursor: page2.nextCursor ?? '' });
      expect(page3).toEqual({ items: [expect.objectContaining({ id: 'A0' })], nextCursor: null });
      expect((await log.search({})).items.map((m) => m.id)).toEqual(['B0', 'A4', 'A3', 'A2', 'A1', 'A0']);
      expect((await log.search({ recipient: 'R2@example.ORG' })).items.map((m) => m.id)).toEqual(['A2']);
      expect((await log.search({ sender: 'X@globex.test' })).items.map((m) => m.id)).toEqual(['B0']);
      expect((await log.search({ userId: 'u2' })).items.map((m) => m.id)).toEqual(['B0']);
      expect((await log.search({ status: 'bounced' })).items.map((m) => m.id)).toEqual(['A3']);
      expect((await log.search({ from: 1001, to: 1003 })).items.map((m) => m.id)).toEqual(['A2', 'A1']);
      expect((await log.search({ tenantId: 't1', from: 1001, to: 1003 })).items.map((m) => m.id)).toEqual(['A2', 'A1']);
      await expect(log.search({ cursor: 'garbage' })).rejects.toThrow(InvalidInputError);
    });

    it('pages through more messages than one page holds, each exactly once', async () => {
      const { log, add } = await setup();
      for (let i = 0; i < 23; i++) await add(`P${String(i).padStart(2, '0')}`, 2000 + Math.floor(i / 3));
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await log.search({ tenantId: 't1', limit: 5, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((m) => m.id));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      expect(seen).toHaveLength(23);
      expect(new Set(seen).size).toBe(23);
    });

    it('purges messages received before the cutoff, with their events', async () => {
      const { log, add } = await setup();
      await add('OLD', 1000);
      await log.addEvent('OLD', 'delivered', {}, 'delivered');
      await add('NEW', 5000);
      expect(await log.purgeOlderThan(2000)).toBe(1);
      expect(await log.get('OLD')).toBeUndefined();
      expect((await log.get('NEW'))?.message.id).toBe('NEW');
      expect((await log.search({})).items.map((m) => m.id)).toEqual(['NEW']);
    });

    it('counts events by name since the log began, and purging does not lower the counts', async () => {
      const { log, add } = await setup();
      expect(await log.eventCounts()).toEqual({});
      await add('OLD', 1000);
      await log.addEvent('OLD', 'received');
      await log.addEvent('OLD', 'delivered', {}, 'delivered');
      await add('NEW', 5000);
      await log.addEvent('NEW', 'received');
      await log.addEvent('NEW', 'deferred', { attempt: 1 }, 'deferred');
      await Promise.all(Array.from({ length: 20 }, (_, i) => log.addEvent('NEW', 'deferred', { attempt: i + 2 })));
      expect(await log.eventCounts()).toEqual({ deferred: 21, delivered: 1, received: 2 });
      await log.purgeOlderThan(2000);
      expect(await log.eventCounts()).toEqual({ deferred: 21, delivered: 1, received: 2 });
    });

    it('finds a message by the ids a provider (SES) gave it, and nothing for an unknown id', async () => {
      const { log, add } = await setup();
      await add('M1', 1000);
      await add('M2', 1000);
      await log.recordProviderIds('M1', ['ses-a', 'ses-b']);
      await log.recordProviderIds('M2', ['ses-c']);
      await log.recordProviderIds('M2', []);
      expect(await log.findByProviderId('ses-a')).toBe('M1');
      expect(await log.findByProviderId('ses-b')).toBe('M1');
      expect(await log.findByProviderId('ses-c')).toBe('M2');
      expect(await log.findByProviderId('ses-unknown')).toBeUndefined();
      const many = Array.from({ length: 60 }, (_, i) => `ses-many-${i}`);
      await log.recordProviderIds('M2', many);
      expect(await log.findByProviderId('ses-many-59')).toBe('M2');
    });
  });
}
