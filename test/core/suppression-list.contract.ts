// The contract every SuppressionList backend keeps (SQLite, DynamoDB): expiry of hard bounces,
// lists apart per tenant, domain matched case-insensitively, manual entries kept, purging.
// Call `suppressionListContract(name, open)` from a backend's test file.
import { describe, expect, it } from 'vitest';
import { suppressHardBounce, type SuppressionList } from '../../core/suppression.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12);

export function suppressionListContract(backend: string, open: (clock: { now(): number }) => Promise<SuppressionList>): void {
  const setup = async () => {
    let now = T0;
    const list = await open({ now: () => now });
    return { list, advance: (ms: number) => (now += ms) };
  };
  describe(`SuppressionList contract: ${backend}`, () => {
  it('suppresses a hard-bounced address for 30 days by default, then lets it go', async () => {
    const { list } = await setup();
    const entry = await suppressHardBounce(list, { tenantId: 't1', address: 'gone@example.com', reason: '550 5.1.1 user unknown', now: T0 });
    expect(entry.expiresAt).toBe(T0 + 30 * DAY);
    expect(await list.find('t1', 'gone@example.com', T0 + 29 * DAY)).toMatchObject({ source: 'bounce', reason: '550 5.1.1 user unknown' });
    expect(await list.find('t1', 'gone@example.com', T0 + 30 * DAY)).toBeUndefined();
    expect(await list.list('t1', T0 + 31 * DAY)).toEqual([]);
  });

  it('keeps lists apart per tenant', async () => {
    const { list } = await setup();
    await list.add({ tenantId: 't1', address: 'x@example.com', source: 'manual', reason: '' });
    expect(await list.find('t2', 'x@example.com', T0)).toBeUndefined();
    expect(await list.list('t2', T0)).toEqual([]);
  });

  it('matches the domain case-insensitively but the local part as given', async () => {
    const { list } = await setup();
    await list.add({ tenantId: 't1', address: 'Ann@EXAMPLE.com', source: 'manual', reason: 'asked to stop' });
    expect((await list.find('t1', 'Ann@example.COM', T0))?.address).toBe('Ann@example.com');
    expect(await list.find('t1', 'ann@example.com', T0)).toBeUndefined();
  });

  it('keeps manual entries without expiry until removed', async () => {
    const { list } = await setup();
    await list.add({ tenantId: 't1', address: 'x@example.com', source: 'manual', reason: 'complaint' });
    expect(await list.find('t1', 'x@example.com', T0 + 3650 * DAY)).toBeDefined();
    expect(await list.remove('t1', 'x@EXAMPLE.com')).toBe(true);
    expect(await list.remove('t1', 'x@example.com')).toBe(false);
    expect(await list.find('t1', 'x@example.com', T0)).toBeUndefined();
  });

  it('a hard bounce does not shorten a permanent manual entry, but refreshes an earlier bounce', async () => {
    const { list, advance } = await setup();
    await list.add({ tenantId: 't1', address: 'x@example.com', source: 'manual', reason: 'complaint' });
    await suppressHardBounce(list, { tenantId: 't1', address: 'x@example.com', reason: '550', now: T0 });
    expect(await list.find('t1', 'x@example.com', T0)).toMatchObject({ source: 'manual', expiresAt: null });

    await suppressHardBounce(list, { tenantId: 't1', address: 'y@example.com', reason: 'first', now: T0 });
    advance(20 * DAY);
    await suppressHardBounce(list, { tenantId: 't1', address: 'y@example.com', reason: 'second', now: T0 + 20 * DAY });
    expect(await list.find('t1', 'y@example.com', T0 + 45 * DAY)).toMatchObject({ reason: 'second' });
  });

  it('refuses to add something that is not an address, and finds nothing for one', async () => {
    const { list } = await setup();
    await expect(list.add({ tenantId: 't1', address: 'nobody', source: 'manual', reason: '' })).rejects.toThrow(/not an email address/);
    expect(await list.find('t1', 'nobody', T0)).toBeUndefined();
  });

  it('lists entries in force, newest first', async () => {
    const { list, advance } = await setup();
    await list.add({ tenantId: 't1', address: 'a@example.com', source: 'manual', reason: '' });
    advance(1000);
    await list.add({ tenantId: 't1', address: 'b@example.com', source: 'manual', reason: '', expiresAt: T0 + 5000 });
    expect((await list.list('t1', T0 + 2000)).map((entry) => entry.address)).toEqual(['b@example.com', 'a@example.com']);
    expect((await list.list('t1', T0 + 6000)).map((entry) => entry.address)).toEqual(['a@example.com']);
  });

  it('purges expired entries and keeps the rest', async () => {
    const { list } = await setup();
    await suppressHardBounce(list, { tenantId: 't1', address: 'old@example.com', reason: '550', now: T0 });
    await list.add({ tenantId: 't1', address: 'manual@example.com', source: 'manual', reason: 'asked' });
    await suppressHardBounce(list, { tenantId: 't1', address: 'new@example.com', reason: '550', now: T0 + 20 * DAY });
    expect(await list.purgeExpired(T0 + 31 * DAY)).toBe(1);
    expect((await list.list('t1', T0)).map((entry) => entry.address).sort()).toEqual(['manual@example.com', 'new@example.com']);
  });
});
}
