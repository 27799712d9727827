import { describe, expect, it } from 'vitest';
import { runChecks } from '../../../core/checks/check.js';
import { world } from './fixtures.js';

const MINUTE = 60_000;

describe('makeIngressPolicy wiring', () => {
  it('MAIL FROM: a locked identity gets 550 5.7.1 naming the lock and its end in UTC, then a permanent lock says who unlocks', async () => {
    const w = await world({ settings: { lockMinutes: 90, maxTimedUnlocks: 1 } });
    await w.locks.lockAfterAbuse(w.user.id, [{ name: 'SPAM_VERDICT', evidence: { score: 12 } }]);
    const first = await runChecks(w.policy.mailFrom, await w.mailFacts('alice@acme.example'));
    expect(first.final).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1', text: 'alice@acme.example is locked (SPAM_VERDICT) until 15:30 UTC; try again after that' });
    expect(first.decidedBy).toBe('locked-sender');
    w.clock.advance(90 * MINUTE);
    expect((await runChecks(w.policy.mailFrom, await w.mailFacts('alice@acme.example'))).final.action).toBe('accept');
    await w.locks.lockAfterAbuse(w.user.id, [{ name: 'SPAM_VERDICT' }]);
    const permanent = await runChecks(w.policy.mailFrom, await w.mailFacts('alice@acme.example'));
    expect(permanent.final.text).toBe('alice@acme.example is locked (SPAM_VERDICT) until your provider unlocks it; contact them');
    await w.locks.unlock(w.user.id, 'tenant:acme', 'checked');
    expect((await runChecks(w.policy.mailFrom, await w.mailFacts('alice@acme.example'))).final.action).toBe('accept');
    expect(w.lockEvents.map((e) => e.kind)).toEqual(['lock', 'timed-unlock', 'lock', 'manual-unlock']);
    const logged = w.logs.filter((l) => l.message === 'user lock event').map((l) => l.fields);
    expect(logged).toHaveLength(4);
    // Notifications and audits read these lines: each names the event, the identity and its reasons.
    expect(logged[0]).toMatchObject({ event: 'lock', identity: 'alice@acme.example', permanent: false, until: '2026-11-25T15:30:00.000Z', reasons: [{ name: 'SPAM_VERDICT', evidence: { score: 12 } }] });
    expect(logged[1]).toMatchObject({ event: 'timed-unlock', timedUnlocks: 1, reasons: [{ name: 'SPAM_VERDICT' }] });
    expect(logged[2]).toMatchObject({ event: 'lock', permanent: true, until: null });
    expect(logged[3]).toMatchObject({ event: 'manual-unlock', by: 'tenant:acme', reason: 'checked', timedUnlocks: 0 });
  });

  it('locks after limitViolations.lockAfter rate-limit refusals within the window', async () => {
    const w = await world({
      settings: { mailsPerMinute: 1, mailsPerHour: 0, maxRecipientsPerDay: 0 },
      config: { policy: { limitViolations: { lockAfter: 3, windowMinutes: 10 } } },
    });
    const refusals = [];
    for (let i = 0; i < 4; i++) {
      const facts = await w.rcptFacts(`r${i}@example.org`);
      const outcome = await runChecks(w.policy.rcptTo, facts);
      if (outcome.final.action !== 'accept') {
        refusals.push(outcome.final.code);
        await w.policy.onRefusal(facts, outcome.final);
      }
    }
    expect(refusals).toEqual([450, 450, 450]);
    const lock = await w.locks.activeLock(w.user.id);
    expect(lock?.reasons[0]).toMatchObject({ name: 'LIMIT_VIOLATIONS', evidence: { refusals: 3, limits: ['RATE_LIMIT_MINUTE'] } });
  });

  it('does not lock for limit violations when lockAfter is 0', async () => {
    const w = await world({ settings: { mailsPerMinute: 1 }, config: { policy: { limitViolations: { lockAfter: 0 } } } });
    for (let i = 0; i < 5; i++) {
      const facts = await w.rcptFacts(`r${i}@example.org`);
      const outcome = await runChecks(w.policy.rcptTo, facts);
      if (outcome.final.action !== 'accept') await w.policy.onRefusal(facts, outcome.final);
    }
    expect(await w.locks.activeLock(w.user.id)).toBeUndefined();
  });

  it('a manual unlock forgets the invalid recipients that caused the lock', async () => {
    const w = await world({ settings: { invalidRecipientLimit: 2 } });
    await runChecks(w.policy.rcptTo, await w.rcptFacts('bad1'));
    await runChecks(w.policy.rcptTo, await w.rcptFacts('bad2'));
    expect(await w.locks.activeLock(w.user.id)).toBeDefined();
    await w.locks.unlock(w.user.id, 'operator', 'customer fixed the list');
    // One more invalid recipient does not lock again at once.
    await runChecks(w.policy.rcptTo, await w.rcptFacts('bad3'));
    expect(await w.locks.activeLock(w.user.id)).toBeUndefined();
    expect((await runChecks(w.policy.rcptTo, await w.rcptFacts('good@example.org'))).final.action).toBe('accept');
  });

  it('lists locks per tenant', async () => {
    const w = await world();
    await w.locks.lockAfterAbuse(w.user, [{ name: 'AUTH_BRUTE_FORCE' }]);
    expect((await w.locks.listLocks({ tenantId: w.tenant.id })).map((l) => l.identity)).toEqual(['alice@acme.example']);
    expect(await w.locks.listLocks({ tenantId: 'other' })).toEqual([]);
  });
});
