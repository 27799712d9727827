import { describe, expect, it } from 'vitest';
import { runChecks } from '../../../core/checks/check.js';
import type { ConnectFacts } from '../../../core/checks/session.js';
import { reversedAddress } from '../../../core/policy/dnsbl.js';
import { world } from './fixtures.js';

const HOUR = 3_600_000;
const connect = (clientIp: string, now: number): ConnectFacts => ({ sessionId: 'c1', clientIp, listener: 'submission', now });

describe('DNSBL at connect', () => {
  const zone = {
    '2.0.0.127.bl.test': { A: ['127.0.0.2'] },
    '9.113.0.203.bl.test': { A: ['127.255.255.254'] },
    '9.113.0.203.other.test': 'SERVFAIL' as const,
    [`${reversedAddress('2001:db8::1') ?? ''}.bl.test`]: { A: ['127.0.0.4'] },
  };

  it('builds reversed query names for IPv4, IPv4-mapped and IPv6', () => {
    expect(reversedAddress('192.0.2.1')).toBe('1.2.0.192');
    expect(reversedAddress('::ffff:192.0.2.1')).toBe('1.2.0.192');
    expect(reversedAddress('2001:db8::1')).toBe('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2');
  });

  it('refuses a listed address with 554 5.7.1 naming the zone (dnsblAction reject)', async () => {
    const w = await world({ zone, config: { policy: { dnsblZones: ['bl.test', 'other.test'] } } });
    const outcome = await runChecks(w.policy.connect, connect('127.0.0.2', w.clock.now()));
    expect(outcome.final).toMatchObject({ action: 'reject', code: 554, enhancedCode: '5.7.1', text: 'Your address 127.0.0.2 is listed in bl.test; mail from it is refused' });
    expect(outcome.final.symbols[0]).toMatchObject({ name: 'DNSBL_LISTED', evidence: { zone: 'bl.test', answer: ['127.0.0.2'] } });
    expect(w.resolver.calls).toContainEqual({ type: 'A', name: '2.0.0.127.other.test' });
    const v6 = await runChecks(w.policy.connect, connect('2001:db8::1', w.clock.now()));
    expect(v6.final.code).toBe(554);
  });

  it('throttles instead with 421 4.7.0 when dnsblAction is throttle', async () => {
    const w = await world({ zone, config: { policy: { dnsblZones: ['bl.test'], dnsblAction: 'throttle' } } });
    const outcome = await runChecks(w.policy.connect, connect('127.0.0.2', w.clock.now()));
    expect(outcome.final).toMatchObject({ action: 'tempfail', code: 421, enhancedCode: '4.7.0' });
  });

  it('treats NXDOMAIN, DNS errors and 127.255.255.x answers as not listed, logging the odd ones', async () => {
    const w = await world({ zone, config: { policy: { dnsblZones: ['bl.test', 'other.test'] } } });
    expect((await runChecks(w.policy.connect, connect('198.51.100.1', w.clock.now()))).final.action).toBe('accept');
    expect((await runChecks(w.policy.connect, connect('203.0.113.9', w.clock.now()))).final.action).toBe('accept');
    expect(w.logs.filter((l) => l.level === 'warn').map((l) => l.fields?.zone).sort()).toEqual(['bl.test', 'other.test']);
  });

  it('asks nothing when no zones are configured', async () => {
    const w = await world({ zone });
    expect((await runChecks(w.policy.connect, connect('127.0.0.2', w.clock.now()))).final.action).toBe('accept');
    expect(w.resolver.calls).toEqual([]);
  });
});

describe('internal IP reputation', () => {
  const reputation = { halfLifeMinutes: 60, throttleScore: 4, rejectScore: 8, authFailureWeight: 1, refusalWeight: 0.5, abuseWeight: 10 };

  it('throttles (421 4.7.0) and then refuses (554 5.7.1) an IP as its auth failures add up', async () => {
    const w = await world({ config: { policy: { reputation, authFailure: { perIp: 1000, perUser: 1000 } } } });
    for (let i = 0; i < 4; i++) await w.policy.onAuthFailure('203.0.113.5', 'x');
    expect((await runChecks(w.policy.connect, connect('203.0.113.5', w.clock.now()))).final).toMatchObject({ code: 421, enhancedCode: '4.7.0' });
    for (let i = 0; i < 4; i++) await w.policy.onAuthFailure('203.0.113.5', 'x');
    const refused = await runChecks(w.policy.connect, connect('203.0.113.5', w.clock.now()));
    expect(refused.final).toMatchObject({ code: 554, enhancedCode: '5.7.1' });
    expect(refused.final.symbols[0]).toMatchObject({ name: 'IP_REPUTATION_BAD', score: 8 });
    expect((await runChecks(w.policy.connect, connect('203.0.113.6', w.clock.now()))).final.action).toBe('accept');
  });

  it('decays by half every halfLifeMinutes', async () => {
    // An IP user's verdicts are its address's: they raise the score.
    const w = await world({ kind: 'ip', config: { policy: { reputation } } });
    await w.policy.recordAbuse('203.0.113.5', w.user.id, [{ name: 'VIRUS_FOUND', evidence: 'Eicar-Test' }]);
    expect(await w.policy.reputation.score('203.0.113.5')).toBe(10);
    w.clock.advance(HOUR);
    expect(await w.policy.reputation.score('203.0.113.5')).toBe(5);
    w.clock.advance(HOUR);
    expect((await runChecks(w.policy.connect, connect('203.0.113.5', w.clock.now()))).final.action).toBe('accept');
    // The abuse verdict also went through lockAfterAbuse.
    expect((await w.locks.history(w.user.id))[0]?.reasons?.[0]?.name).toBe('VIRUS_FOUND');
  });

  it('charges an authenticated user\'s verdicts and refusals to the user, never to its source address', async () => {
    const w = await world({ config: { policy: { reputation } } });
    await w.policy.recordAbuse('198.51.100.7', w.user.id, [{ name: 'VIRUS_FOUND', evidence: 'Eicar-Test' }], 'virus');
    await w.policy.recordAbuse('198.51.100.7', w.user.id, [{ name: 'SPAM' }], 'spam');
    const facts = await w.mailFacts('bob@acme.example');
    await w.policy.onRefusal(facts, { action: 'reject', code: 550, symbols: [{ name: 'SEND_AS_NOT_ALLOWED' }] });
    expect(await w.policy.reputation.score('198.51.100.7')).toBe(0);
    expect((await runChecks(w.policy.connect, connect('198.51.100.7', w.clock.now()))).final.action).toBe('accept');
    // The user answers: the virus verdict locked it.
    expect((await w.locks.history(w.user.id))[0]?.reasons?.[0]?.name).toBe('VIRUS_FOUND');
  });

  it('charges unauthenticated relay attempts to the address', async () => {
    const w = await world({ config: { policy: { reputation } } });
    const facts = { sessionId: 's', clientIp: '203.0.113.8', listener: 'submission' as const, now: w.clock.now() };
    await w.policy.onRefusal(facts, { action: 'reject', code: 530, symbols: [{ name: 'NOT_AUTHORISED_TO_RELAY' }] });
    expect(await w.policy.reputation.score('203.0.113.8')).toBe(0.5);
  });

  it('counts sender-rule and recipient refusals of an IP user, not rate-limit refusals', async () => {
    const w = await world({ kind: 'ip', config: { policy: { reputation } } });
    const facts = await w.mailFacts('bob@acme.example');
    await w.policy.onRefusal(facts, { action: 'reject', code: 550, symbols: [{ name: 'SEND_AS_NOT_ALLOWED' }] });
    await w.policy.onRefusal(facts, { action: 'tempfail', code: 451, symbols: [{ name: 'RATE_LIMIT_HOUR' }] });
    expect(await w.policy.reputation.score(facts.clientIp)).toBe(0.5);
  });
});
