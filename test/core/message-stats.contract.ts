// The contract every MessageStats backend keeps with its message log (SQLite: SQL over the log;
// DynamoDB: counters the log moves with each status change): buckets with zeros, messages,
// recipients, sent and refusals by reason, per tenant and user, notices left out, SMTP-time
// refusals added and purged. Call `messageStatsContract(name, open)` from a backend's test file.
import { describe, expect, it } from 'vitest';
import type { MessageStats } from '../../core/api/stats.js';
import type { MessageLog, MessageStatus } from '../../core/stores.js';

const H = 3_600_000;
const T0 = Date.parse('2026-05-01T00:00:00Z');

export function messageStatsContract(backend: string, open: () => Promise<{ log: MessageLog; stats: MessageStats }>): void {
  async function setup() {
    const { log, stats } = await open();
    let n = 0;
    const add = async (at: number, status: MessageStatus, options: { user?: string; tenant?: string; rcpts?: number; events?: Array<Record<string, unknown>>; queued?: Record<string, unknown> } = {}) => {
      const id = `m${++n}`;
      await log.create({ id, tenantId: options.tenant ?? 't1', userId: options.user ?? 'u1', identity: null, mailFrom: options.queued ? '' : 'a@x.example', rcptTo: Array.from({ length: options.rcpts ?? 1 }, (_, i) => `r${i}@y.example`), size: 1, subject: null, status: 'queued', receivedAt: at });
      if (options.queued) await log.addEvent(id, 'queued', options.queued);
      for (const detail of options.events ?? []) await log.addEvent(id, 'event', detail);
      if (status !== 'queued') await log.addEvent(id, status, {}, status);
    };
    return { stats, add, log };
  }

  describe(`MessageStats contract: ${backend}`, () => {
  it('buckets per hour with zeros, counting messages, recipients, sent, and refusals by symbol or else by status', async () => {
    const { stats, add } = await setup();
    await add(T0 + 10, 'delivered', { rcpts: 3 });
    await add(T0 + 20, 'partially-delivered', { rcpts: 2 });
    await add(T0 + H + 5, 'quarantined', { events: [{ symbols: [{ name: 'VIRUS_FOUND' }] }] });
    await add(T0 + H + 6, 'bounced');
    await add(T0 + H + 7, 'refused', { events: [{ symbols: [{ name: 'OLD' }] }, { symbols: [{ name: 'RATE_LIMIT_HOUR' }] }] });
    await add(T0 + 2 * H + 1, 'deferred');
    const points = await stats.volume({ tenantId: 't1', from: T0, to: T0 + 4 * H, bucket: 'hour' });
    expect(points).toEqual([
      { start: T0, messages: 2, recipients: 5, sent: 2, refused: {} },
      { start: T0 + H, messages: 3, recipients: 3, sent: 0, refused: { VIRUS_FOUND: 1, bounced: 1, RATE_LIMIT_HOUR: 1 } },
      { start: T0 + 2 * H, messages: 1, recipients: 1, sent: 0, refused: {} },
      { start: T0 + 3 * H, messages: 0, recipients: 0, sent: 0, refused: {} },
    ]);
  });

  it('keeps to the tenant, the user and the time range; buckets per UTC day', async () => {
    const { stats, add } = await setup();
    await add(T0 - 1, 'delivered');
    await add(T0 + 1, 'delivered', { user: 'u2' });
    await add(T0 + 25 * H, 'delivered', { tenant: 't2' });
    await add(T0 + 30 * H, 'delivered');
    await add(T0 + 48 * H, 'delivered');
    const days = await stats.volume({ tenantId: 't1', userId: 'u1', from: T0, to: T0 + 48 * H, bucket: 'day' });
    expect(days.map((p) => [p.start, p.messages])).toEqual([[T0, 0], [T0 + 24 * H, 1]]);
  });

  it('sums messages and recipients per user of a tenant within a range', async () => {
    const { stats, add } = await setup();
    await add(T0 + 1, 'delivered', { rcpts: 4 });
    await add(T0 + 2, 'queued', { rcpts: 1 });
    await add(T0 + 3, 'delivered', { user: 'u2' });
    await add(T0 + 4, 'delivered', { tenant: 't2', user: 'u3' });
    await add(T0 + 24 * H, 'delivered');
    const volumes = await stats.volumeByUser('t1', T0, T0 + 24 * H);
    expect(Object.fromEntries(volumes)).toEqual({ u1: { messages: 2, recipients: 5 }, u2: { messages: 1, recipients: 1 } });
  });

  it("leaves out Outpost's non-delivery reports and forwarded bounces to the user, but not the user's own null-sender mail", async () => {
    const { stats, add } = await setup();
    await add(T0 + 1, 'bounced', { rcpts: 2 });
    await add(T0 + 2, 'delivered', { queued: { dsnFor: 'm1' } });
    await add(T0 + 3, 'delivered', { queued: { bounceFor: 'm0' } });
    await add(T0 + 4, 'delivered', { queued: {} });
    const [hour] = await stats.volume({ tenantId: 't1', from: T0, to: T0 + H, bucket: 'hour' });
    expect(hour).toEqual({ start: T0, messages: 2, recipients: 3, sent: 1, refused: { bounced: 1 } });
    expect(Object.fromEntries(await stats.volumeByUser('t1', T0, T0 + H))).toEqual({ u1: { messages: 2, recipients: 3 } });
  });

  it('adds refusals during the SMTP session, by reason, per user and per hour or day, and purges them', async () => {
    const { stats, add } = await setup();
    await add(T0 + 10, 'quarantined', { events: [{ symbols: [{ name: 'GTUBE' }] }] });
    await stats.recordRefusal({ tenantId: 't1', userId: 'u1', reason: 'RATE_LIMIT_HOUR', at: T0 + 20 });
    await stats.recordRefusal({ tenantId: 't1', userId: 'u1', reason: 'RATE_LIMIT_HOUR', at: T0 + 30 });
    await stats.recordRefusal({ tenantId: 't1', userId: 'u2', reason: 'USER_LOCKED', at: T0 + H + 5 });
    await stats.recordRefusal({ tenantId: 't2', userId: 'u9', reason: 'RATE_LIMIT_HOUR', at: T0 + 5 });
    const hourly = await stats.volume({ tenantId: 't1', from: T0, to: T0 + 2 * H, bucket: 'hour' });
    expect(hourly.map((point) => point.refused)).toEqual([{ GTUBE: 1, RATE_LIMIT_HOUR: 2 }, { USER_LOCKED: 1 }]);
    // Refusals are not messages: they do not count as accepted mail.
    expect(hourly.map((point) => point.messages)).toEqual([1, 0]);
    const oneUser = await stats.volume({ tenantId: 't1', userId: 'u2', from: T0, to: T0 + 86_400_000, bucket: 'day' });
    expect(oneUser.map((point) => point.refused)).toEqual([{ USER_LOCKED: 1 }]);
    expect(await stats.purgeOlderThan(T0 + H)).toBe(2);
    const after = await stats.volume({ tenantId: 't1', from: T0, to: T0 + 2 * H, bucket: 'hour' });
    expect(after.map((point) => point.refused)).toEqual([{ GTUBE: 1 }, { USER_LOCKED: 1 }]);
  });

    it('moves a message between reasons and out of sent when its status changes again', async () => {
      const { stats, add, log } = await setup();
      await add(T0 + 1, 'delivered');
      await log.addEvent('m1', 'bounced', { symbols: [{ name: 'LATE_BOUNCE' }] }, 'bounced');
      const [hour] = await stats.volume({ tenantId: 't1', from: T0, to: T0 + H, bucket: 'hour' });
      expect(hour).toEqual({ start: T0, messages: 1, recipients: 1, sent: 0, refused: { LATE_BOUNCE: 1 } });
      await log.addEvent('m1', 'released', {}, 'delivered');
      const [again] = await stats.volume({ tenantId: 't1', from: T0, to: T0 + H, bucket: 'hour' });
      expect(again).toEqual({ start: T0, messages: 1, recipients: 1, sent: 1, refused: {} });
    });
  });
}
