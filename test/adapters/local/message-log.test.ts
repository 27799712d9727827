import { describe, expect, it } from 'vitest';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { InvalidInputError } from '../../../core/stores.js';

function setup() {
  let now = 1_700_000_000_000;
  const log = new SqliteMessageLog(openDatabase(':memory:'), { now: () => now });
  const add = (id: string, receivedAt: number, fields: Partial<{ mailFrom: string; rcptTo: string[]; tenantId: string }> = {}) =>
    log.create({
      id,
      tenantId: fields.tenantId ?? 't1',
      userId: 'u1',
      identity: 'alice@acme.test',
      mailFrom: fields.mailFrom ?? 'alice@acme.test',
      rcptTo: fields.rcptTo ?? ['bob@example.org'],
      size: 100,
      subject: 'hi',
      status: 'queued',
      receivedAt,
    });
  return { log, add, setNow: (value: number) => (now = value) };
}

describe('SqliteMessageLog', () => {
  it('records events in order and moves the status with them', async () => {
    const { log, add, setNow } = setup();
    await add('M1', 1000);
    setNow(2000);
    await log.addEvent('M1', 'received', { clientIp: '192.0.2.1' });
    setNow(3000);
    await log.addEvent('M1', 'deferred', { response: '451 4.3.0 try later' }, 'deferred');
    setNow(4000);
    await log.addEvent('M1', 'delivered', { response: '250 ok' }, 'delivered');
    const found = await log.get('M1');
    expect(found?.message).toMatchObject({ status: 'delivered', updatedAt: 4000 });
    expect(found?.events).toEqual([
      { at: 2000, event: 'received', detail: { clientIp: '192.0.2.1' } },
      { at: 3000, event: 'deferred', detail: { response: '451 4.3.0 try later' } },
      { at: 4000, event: 'delivered', detail: { response: '250 ok' } },
    ]);
    expect(await log.get('nope')).toBeUndefined();
  });

  it('searches by tenant, sender, recipient (case-insensitively), status and time range, newest first, in pages', async () => {
    const { log, add } = setup();
    for (let i = 0; i < 5; i++) await add(`A${i}`, 1000 + i, { rcptTo: [`r${i}@Example.org`] });
    await add('B0', 1010, { tenantId: 't2', mailFrom: 'x@globex.test' });
    await log.addEvent('A3', 'bounced', {}, 'bounced');
    const page1 = await log.search({ tenantId: 't1', limit: 2 });
    expect(page1.items.map((m) => m.id)).toEqual(['A4', 'A3']);
    const page2 = await log.search({ tenantId: 't1', limit: 2, cursor: page1.nextCursor ?? '' });
    expect(page2.items.map((m) => m.id)).toEqual(['A2', 'A1']);
    const page3 = await log.search({ tenantId: 't1', limit: 2, cursor: page2.nextCursor ?? '' });
    expect(page3).toEqual({ items: [expect.objectContaining({ id: 'A0' })], nextCursor: null });
    expect((await log.search({ recipient: 'R2@example.ORG' })).items.map((m) => m.id)).toEqual(['A2']);
    expect((await log.search({ sender: 'X@globex.test' })).items.map((m) => m.id)).toEqual(['B0']);
    expect((await log.search({ status: 'bounced' })).items.map((m) => m.id)).toEqual(['A3']);
    expect((await log.search({ from: 1001, to: 1003 })).items.map((m) => m.id)).toEqual(['A2', 'A1']);
    await expect(log.search({ cursor: 'garbage' })).rejects.toThrow(InvalidInputError);
  });

  it('purges messages received before the cutoff, with their events', async () => {
    const { log, add } = setup();
    await add('OLD', 1000);
    await log.addEvent('OLD', 'delivered', {}, 'delivered');
    await add('NEW', 5000);
    expect(await log.purgeOlderThan(2000)).toBe(1);
    expect(await log.get('OLD')).toBeUndefined();
    expect((await log.get('NEW'))?.message.id).toBe('NEW');
    expect((await log.search({})).items.map((m) => m.id)).toEqual(['NEW']);
  });
});
