import { describe, expect, it } from 'vitest';
import { runChecks } from '../../../core/checks/check.js';
import { invalidRecipientRestriction } from '../../../core/policy/invalid-recipients.js';
import { counterKeys } from '../../../core/policy/keys.js';
import { recipientValidity } from '../../../core/policy/recipient-validity.js';
import { world } from './fixtures.js';

const HOUR = 3_600_000;
const names = (result: { symbols: Array<{ name: string }> }) => result.symbols.map((s) => s.name);

describe('recipient validity (RCPT)', () => {
  it('refuses bad syntax with 553 5.1.3 and counts it as invalid', async () => {
    const w = await world();
    const check = recipientValidity({ counters: w.counters, locks: w.locks, resolver: w.resolver });
    const result = await check.check(await w.rcptFacts('bob@@example.org'));
    expect(result).toMatchObject({ action: 'reject', code: 553, enhancedCode: '5.1.3' });
    expect(names(result)).toEqual(['RECIPIENT_SYNTAX_INVALID']);
    expect(await w.counters.total(counterKeys.invalidRecipients(w.user.id), 24 * HOUR)).toBe(1);
  });

  it('refuses a domain without MX or A with 550 5.1.2 and counts it; a DNS failure is 451 4.4.3, not counted', async () => {
    const w = await world();
    const check = recipientValidity({ counters: w.counters, locks: w.locks, resolver: w.resolver });
    const missing = await check.check(await w.rcptFacts('bob@nowhere.example'));
    expect(missing).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.1.2' });
    const broken = await check.check(await w.rcptFacts('bob@broken.example'));
    expect(broken).toMatchObject({ action: 'tempfail', code: 451, enhancedCode: '4.4.3' });
    expect(await w.counters.total(counterKeys.invalidRecipients(w.user.id), 24 * HOUR)).toBe(1);
    expect((await check.check(await w.rcptFacts('bob@a-only.example'))).action).toBe('continue');
  });
});

describe('invalid recipient limit (invalidRecipientLimit)', () => {
  it('with autoLock, reaching the limit locks the user; the next RCPT gets the lock refusal', async () => {
    const w = await world({ settings: { invalidRecipientLimit: 3, autoLock: true, lockMinutes: 30 } });
    for (let i = 0; i < 2; i++) await runChecks(w.policy.rcptTo, await w.rcptFacts(`x${i}@nowhere.example`));
    expect(await w.locks.activeLock(w.user.id)).toBeUndefined();
    const third = await runChecks(w.policy.rcptTo, await w.rcptFacts('x3@nowhere.example'));
    expect(names(third.final)).toEqual(['RECIPIENT_DOMAIN_UNRESOLVABLE', 'INVALID_RECIPIENT_LIMIT']);
    const lock = await w.locks.activeLock(w.user.id);
    expect(lock?.reasons.map((r) => r.name)).toEqual(['INVALID_RECIPIENT_LIMIT']);
    const next = await runChecks(w.policy.rcptTo, await w.rcptFacts('good@example.org'));
    expect(next.final).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
    expect(next.final.text).toBe('alice@acme.example is locked (INVALID_RECIPIENT_LIMIT) until 14:30 UTC; try again after that');
  });

  it('without autoLock, reaching the limit refuses every RCPT with 550 5.7.1 until the window passes', async () => {
    const w = await world({ settings: { invalidRecipientLimit: 2, autoLock: false } });
    const start = w.clock.now();
    await runChecks(w.policy.rcptTo, await w.rcptFacts('bad'));
    w.clock.advance(HOUR);
    await runChecks(w.policy.rcptTo, await w.rcptFacts('bad2'));
    expect(await w.locks.activeLock(w.user.id)).toBeUndefined();
    const refused = await invalidRecipientRestriction(w.counters).check(await w.rcptFacts('good@example.org'));
    expect(refused).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
    expect(refused.text).toContain('until 2026-11-26 14:00 UTC');
    w.clock.set(start + 24 * HOUR);
    expect((await invalidRecipientRestriction(w.counters).check(await w.rcptFacts('good@example.org'))).action).toBe('continue');
  });

  it('a limit of 0 means no limit', async () => {
    const w = await world({ settings: { invalidRecipientLimit: 0, autoLock: false } });
    for (let i = 0; i < 5; i++) await runChecks(w.policy.rcptTo, await w.rcptFacts(`bad${i}`));
    expect((await runChecks(w.policy.rcptTo, await w.rcptFacts('good@example.org'))).final.action).toBe('accept');
  });

  it('hard bounces reported by delivery count towards the limit', async () => {
    const w = await world({ settings: { invalidRecipientLimit: 3 } });
    await w.policy.recordHardBounces(w.user.id, 3, { messageId: 'm1' });
    expect((await w.locks.activeLock(w.user.id))?.reasons[0]).toMatchObject({ name: 'INVALID_RECIPIENT_LIMIT', evidence: { why: 'hard-bounce', messageId: 'm1' } });
  });
});
