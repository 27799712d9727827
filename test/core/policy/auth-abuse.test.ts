import { describe, expect, it } from 'vitest';
import { world } from './fixtures.js';

const MINUTE = 60_000;
const config = (authFailure: Record<string, unknown>) => ({ policy: { authFailure, reputation: { throttleScore: 1000, rejectScore: 2000 } } });

describe('AUTH failures across connections', () => {
  it('exposes the per-connection threshold from config', async () => {
    const w = await world({ config: config({ perConnection: 5 }) });
    expect(w.policy.maxAuthFailuresPerConnection).toBe(5);
  });

  it('blocks a source IP after perIp failures for blockMinutes, even for a correct password (421 4.7.0)', async () => {
    const w = await world({ config: config({ perIp: 3, perUser: 100, windowMinutes: 10, blockMinutes: 15 }) });
    for (let i = 0; i < 2; i++) await w.policy.onAuthFailure('203.0.113.5', `guess${i}@acme.example`);
    expect(await w.policy.isAuthBlocked('203.0.113.5', 'alice@acme.example')).toBeUndefined();
    await w.policy.onAuthFailure('203.0.113.5', 'guess3@acme.example');
    const blocked = await w.policy.isAuthBlocked('203.0.113.5', 'alice@acme.example');
    expect(blocked).toMatchObject({ action: 'tempfail', code: 421, enhancedCode: '4.7.0', text: 'Too many failed logins from 203.0.113.5; try again after 14:15 UTC' });
    expect(blocked?.symbols[0]?.name).toBe('AUTH_BLOCKED_IP');
    expect(await w.policy.isAuthBlocked('203.0.113.6', 'alice@acme.example')).toBeUndefined();
    w.clock.advance(15 * MINUTE);
    expect(await w.policy.isAuthBlocked('203.0.113.5', 'alice@acme.example')).toBeUndefined();
  });

  it('counts failures only within windowMinutes', async () => {
    const w = await world({ config: config({ perIp: 3, perUser: 100, windowMinutes: 10 }) });
    await w.policy.onAuthFailure('203.0.113.5', 'x');
    await w.policy.onAuthFailure('203.0.113.5', 'x');
    w.clock.advance(10 * MINUTE);
    await w.policy.onAuthFailure('203.0.113.5', 'x');
    expect(await w.policy.isAuthBlocked('203.0.113.5', 'x')).toBeUndefined();
    // Failures spread over the window add up.
    w.clock.advance(4 * MINUTE);
    await w.policy.onAuthFailure('203.0.113.5', 'x');
    w.clock.advance(4 * MINUTE);
    await w.policy.onAuthFailure('203.0.113.5', 'x');
    expect(await w.policy.isAuthBlocked('203.0.113.5', 'x')).toBeDefined();
  });

  it('blocks a username after perUser failures from many IPs and locks the user (lockUser on, autoLock)', async () => {
    const w = await world({ config: config({ perIp: 100, perUser: 4, blockMinutes: 20, lockUser: true }) });
    for (let i = 0; i < 4; i++) await w.policy.onAuthFailure(`203.0.113.${i}`, 'Alice@acme.example');
    const blocked = await w.policy.isAuthBlocked('198.51.100.1', 'alice@acme.example');
    expect(blocked).toMatchObject({ code: 421, enhancedCode: '4.7.0', text: 'Too many failed logins for this account; try again after 14:20 UTC' });
    expect(blocked?.symbols[0]).toMatchObject({ name: 'AUTH_BLOCKED_USER', evidence: { username: 'alice@acme.example', source: '198.51.100.1' } });
    const lock = await w.locks.activeLock(w.user.id);
    expect(lock?.reasons[0]).toMatchObject({ name: 'AUTH_BRUTE_FORCE', evidence: { failures: 4 } });
  });

  it('does not lock the user by default (lockUser off), but still blocks AUTH from strangers', async () => {
    const w = await world({ config: config({ perUser: 2 }) });
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.2', 'alice@acme.example');
    expect(await w.policy.isAuthBlocked('198.51.100.1', 'alice@acme.example')).toBeDefined();
    expect(await w.locks.activeLock(w.user.id)).toBeUndefined();
  });

  it('keeps a blocked login open from the sources it logged in from within familiarSourceDays (IPv6 by /64)', async () => {
    const w = await world({ config: config({ perIp: 100, perUser: 3, blockMinutes: 60, windowMinutes: 60, familiarSourceDays: 30 }) });
    await w.policy.onAuthSuccess('198.51.100.7', 'alice@acme.example');
    await w.policy.onAuthSuccess('2001:db8:1:2::10', 'alice@acme.example');
    for (let i = 0; i < 3; i++) await w.policy.onAuthFailure(`203.0.113.${i}`, 'alice@acme.example');
    expect(await w.policy.isAuthBlocked('198.51.100.7', 'alice@acme.example')).toBeUndefined();
    expect(await w.policy.isAuthBlocked('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 'alice@acme.example')).toBeUndefined();
    const stranger = await w.policy.isAuthBlocked('2001:db8:1:3::10', 'alice@acme.example');
    expect(stranger).toMatchObject({ code: 421, enhancedCode: '4.7.0' });
    expect(stranger?.symbols[0]).toMatchObject({ name: 'AUTH_BLOCKED_USER', evidence: { source: '2001:db8:1:3::/64' } });
    expect(await w.policy.isAuthBlocked('198.51.100.8', 'alice@acme.example')).toBeDefined();
    // Familiarity is for one login only.
    for (let i = 0; i < 3; i++) await w.policy.onAuthFailure(`203.0.113.${i}`, 'bob@acme.example');
    expect(await w.policy.isAuthBlocked('198.51.100.7', 'bob@acme.example')).toBeDefined();
    // After familiarSourceDays without a login from it, a source is a stranger again.
    w.clock.advance(30 * 24 * 60 * MINUTE);
    for (let i = 0; i < 3; i++) await w.policy.onAuthFailure(`203.0.113.${i}`, 'alice@acme.example');
    expect(await w.policy.isAuthBlocked('198.51.100.7', 'alice@acme.example')).toBeDefined();
  });

  it("a successful login does not forget the login's failures (strangers get no fresh allowance)", async () => {
    const w = await world({ config: config({ perIp: 100, perUser: 3 }) });
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.2', 'alice@acme.example');
    await w.policy.onAuthSuccess('198.51.100.7', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.3', 'alice@acme.example');
    expect(await w.policy.isAuthBlocked('203.0.113.4', 'alice@acme.example')).toBeDefined();
    expect(await w.policy.isAuthBlocked('198.51.100.7', 'alice@acme.example')).toBeUndefined();
  });

  it('counts every spelling of a login under the name the login is looked up by', async () => {
    const w = await world({ config: config({ perIp: 100, perUser: 3 }) });
    await w.policy.onAuthFailure('203.0.113.1', 'ALICE@acme.example');
    await w.policy.onAuthFailure('203.0.113.2', 'alice@\u3000acme.example.');
    await w.policy.onAuthFailure('203.0.113.3', ' alice@Acme.Example ');
    for (const variant of ['alice@acme.example', 'alice@\u3000acme.example.', 'Alice@ACME.example.']) {
      expect(await w.policy.isAuthBlocked('203.0.113.9', variant), variant).toBeDefined();
    }
  });

  it('a manual unlock lifts the user block too', async () => {
    const w = await world({ config: config({ perUser: 2 }) });
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.2', 'alice@acme.example');
    await w.locks.unlock(w.user.id, 'operator', 'password reset');
    expect(await w.policy.isAuthBlocked('198.51.100.1', 'alice@acme.example')).toBeUndefined();
  });
});

describe('loginSource', () => {
  it('is the IPv4 address, or the IPv6 /64', async () => {
    const { loginSource } = await import('../../../core/login-sources.js');
    expect(loginSource('192.0.2.7')).toBe('192.0.2.7');
    expect(loginSource('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(loginSource('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(loginSource('2001:DB8::1')).toBe('2001:db8:0:0::/64');
    expect(loginSource('::1')).toBe('0:0:0:0::/64');
    expect(loginSource('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
  });
});
