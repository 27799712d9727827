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

});
