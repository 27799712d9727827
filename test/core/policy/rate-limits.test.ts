import { describe, expect, it } from 'vitest';
import { runChecks } from '../../../core/checks/check.js';
import { rateLimits } from '../../../core/policy/rate-limits.js';
import { world } from './fixtures.js';
import { MemoryCounterStore } from '../../../adapters/local/memory-counter-store.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const names = (result: { symbols: Array<{ name: string }> }) => result.symbols.map((s) => s.name);

describe('rate limits at RCPT', () => {
  it('mailsPerMinute: refuses with 450 4.7.1 naming the limit and when to retry', async () => {
    const w = await world({ settings: { mailsPerMinute: 2, mailsPerHour: 0, maxRecipientsPerDay: 0 } });
    const check = rateLimits(w.counters);
    expect((await check.check(await w.rcptFacts('a@example.org'))).action).toBe('continue');
    w.clock.advance(10_000);
    expect((await check.check(await w.rcptFacts('b@example.org'))).action).toBe('continue');
    const refused = await check.check(await w.rcptFacts('c@example.org'));
    expect(refused).toMatchObject({ action: 'tempfail', code: 450, enhancedCode: '4.7.1', text: 'Limit of 2 mails per minute reached; retry after 14:01:00 UTC' });
    expect(names(refused)).toEqual(['RATE_LIMIT_MINUTE']);
    w.clock.advance(50_000);
    expect((await check.check(await w.rcptFacts('c@example.org'))).action).toBe('continue');
  });

  it('mailsPerHour: refuses with 451 4.7.1 "Hourly limit of N mails reached; retry after HH:MM UTC"', async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 3, maxRecipientsPerDay: 0 } });
    const check = rateLimits(w.counters);
    for (let i = 0; i < 3; i++) {
      expect((await check.check(await w.rcptFacts(`r${i}@example.org`))).action).toBe('continue');
      w.clock.advance(5 * MINUTE);
    }
    const refused = await check.check(await w.rcptFacts('r4@example.org'));
    expect(refused).toMatchObject({ code: 451, enhancedCode: '4.7.1', text: 'Hourly limit of 3 mails reached; retry after 15:00 UTC' });
    expect(names(refused)).toEqual(['RATE_LIMIT_HOUR']);
  });

  it('a message to N recipients counts N (the same recipient twice in two messages counts twice)', async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 2, maxRecipientsPerDay: 0 } });
    const check = rateLimits(w.counters);
    expect((await check.check(await w.rcptFacts('a@example.org', { sessionId: 's1' }))).action).toBe('continue');
    await w.policy.afterAccept(await w.dataFacts(['alice@acme.example'], { sessionId: 's1', rcptTo: ['a@example.org'] }));
    expect((await check.check(await w.rcptFacts('a@example.org', { sessionId: 's2' }))).action).toBe('continue');
    expect((await check.check(await w.rcptFacts('b@example.org', { sessionId: 's2' }))).action).toBe('tempfail');
  });

  it('IP users are limited per identity and also per source address', async () => {
    const w = await world({ kind: 'ip', settings: { mailsPerMinute: 2, mailsPerHour: 0, maxRecipientsPerDay: 0 } });
    const check = rateLimits(w.counters);
    expect((await check.check(await w.rcptFacts('a@example.org', { clientIp: '192.0.2.7' }))).action).toBe('continue');
    expect((await check.check(await w.rcptFacts('b@example.org', { clientIp: '192.0.2.8' }))).action).toBe('continue');
    const refused = await check.check(await w.rcptFacts('c@example.org', { clientIp: '192.0.2.9' }));
    expect(refused.code).toBe(450);
    expect(refused.symbols[0]?.evidence).toMatchObject({ key: `rate:minute:user:${w.user.id}` });
    expect(await w.counters.total('rate:minute:ip:192.0.2.7', MINUTE)).toBe(1);
  });

  it('IP users: the source address has its own budget (e.g. used while the address belonged to another range)', async () => {
    const w = await world({ kind: 'ip', settings: { mailsPerMinute: 2, mailsPerHour: 0, maxRecipientsPerDay: 0 } });
    await w.counters.reserve({ limits: [{ key: 'rate:minute:ip:192.0.2.9', units: 2, limit: 2, windowMs: MINUTE }] });
    const refused = await rateLimits(w.counters).check(await w.rcptFacts('c@example.org', { clientIp: '192.0.2.9' }));
    expect(refused).toMatchObject({ code: 450, text: 'Limit of 2 mails per minute from 192.0.2.9 reached; retry after 14:01:00 UTC' });
    expect((await rateLimits(w.counters).check(await w.rcptFacts('c@example.org', { clientIp: '192.0.2.10' }))).action).toBe('continue');
  });

  it('maxRecipientsPerDay: distinct recipients, domain case-insensitive, 450 4.7.1', async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 2 } });
    const check = rateLimits(w.counters);
    for (const rcpt of ['a@example.org', 'a@EXAMPLE.org', 'b@example.org', 'a@example.org']) {
      expect((await check.check(await w.rcptFacts(rcpt))).action).toBe('continue');
    }
    const refused = await check.check(await w.rcptFacts('c@example.org'));
    expect(refused).toMatchObject({ code: 450, enhancedCode: '4.7.1' });
    expect(refused.text).toMatch(/^Daily limit of 2 distinct recipients reached; retry after 2026-11-26 14:00 UTC$/);
    expect(names(refused)).toEqual(['RECIPIENTS_PER_DAY']);
  });

  it('releases the reservations of an abandoned transaction and keeps only the accepted recipients', async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 2, maxRecipientsPerDay: 0 } });
    const check = rateLimits(w.counters);
    await check.check(await w.rcptFacts('a@example.org', { sessionId: 's1' }));
    await check.check(await w.rcptFacts('b@example.org', { sessionId: 's1' }));
    expect((await check.check(await w.rcptFacts('c@example.org', { sessionId: 's2' }))).action).toBe('tempfail');
    await w.policy.releaseTransaction(await w.mailFacts('alice@acme.example', { sessionId: 's1' }));
    expect((await check.check(await w.rcptFacts('c@example.org', { sessionId: 's2' }))).action).toBe('continue');
    // s2 holds c; its message is accepted with c only: c counts, nothing else was held.
    await w.policy.afterAccept(await w.dataFacts(['alice@acme.example'], { sessionId: 's2', rcptTo: ['c@example.org'] }));
    await w.policy.releaseTransaction(await w.mailFacts('alice@acme.example', { sessionId: 's2' }));
    expect(await w.counters.total(`rate:hour:user:${w.user.id}`, HOUR)).toBe(1);
  });

  it('parallel sessions of one user never exceed the hourly limit: 40 RCPTs in 8 sessions, limit 13', async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 13, maxRecipientsPerDay: 0 } });
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => runChecks(w.policy.rcptTo, await w.rcptFacts(`r${i}@example.org`, { sessionId: `s${i % 8}` }))),
    );
    expect(results.filter((r) => r.final.action === 'accept')).toHaveLength(13);
    expect(results.filter((r) => r.final.code === 451)).toHaveLength(27);
  });

  it('a limit of 0 means no limit', async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0 } });
    for (let i = 0; i < 30; i++) expect((await rateLimits(w.counters).check(await w.rcptFacts(`r${i}@example.org`))).action).toBe('continue');
  });

  it("a full memory for distinct recipients on the relay's thread (MemoryCounterStore's budget) is answered 452 4.3.1 (mail system full) and logged with the reason; nothing is reserved", async () => {
    const w = await world({ settings: { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 1_000_000 } });
    const store = new MemoryCounterStore(w.clock, { members: 2 });
    const check = rateLimits(store);
    for (const rcpt of ['a@example.org', 'b@example.org']) expect((await runChecks([check], await w.rcptFacts(rcpt))).final.action).toBe('accept');
    const { final } = await runChecks([check], await w.rcptFacts('c@example.org'));
    expect(final).toMatchObject({ action: 'tempfail', code: 452, enhancedCode: '4.3.1' });
    expect(final.symbols).toEqual([
      expect.objectContaining({ name: 'STORAGE_FULL', evidence: expect.objectContaining({ check: 'rate-limits', error: expect.stringMatching(/memory for distinct recipients is full \(2 held, budget 2\)/) }) }),
    ]);
    expect(store.members).toBe(2);
  });
});
