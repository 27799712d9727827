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
  });

  it('blocks a username after perUser failures from many IPs and locks the user (lockUser, autoLock)', async () => {
    const w = await world({ config: config({ perIp: 100, perUser: 4, blockMinutes: 20 }) });
    for (let i = 0; i < 4; i++) await w.policy.onAuthFailure(`203.0.113.${i}`, 'Alice@acme.example');
    const blocked = await w.policy.isAuthBlocked('198.51.100.1', 'alice@acme.example');
    expect(blocked).toMatchObject({ code: 421, enhancedCode: '4.7.0' });
    expect(blocked?.symbols[0]?.name).toBe('AUTH_BLOCKED_USER');
    const lock = await w.locks.activeLock(w.user.id);
    expect(lock?.reasons[0]).toMatchObject({ name: 'AUTH_BRUTE_FORCE', evidence: { failures: 4 } });
  });

  it('does not lock the user when lockUser is off, but still blocks AUTH', async () => {
    const w = await world({ config: config({ perUser: 2, lockUser: false }) });
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.2', 'alice@acme.example');
    expect(await w.policy.isAuthBlocked('198.51.100.1', 'alice@acme.example')).toBeDefined();
    expect(await w.locks.activeLock(w.user.id)).toBeUndefined();
  });

  it("a successful login forgets the user's failures", async () => {
    const w = await world({ config: config({ perUser: 3 }) });
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthSuccess('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    expect(await w.policy.isAuthBlocked('203.0.113.1', 'alice@acme.example')).toBeUndefined();
  });

  it('a manual unlock lifts the user block too', async () => {
    const w = await world({ config: config({ perUser: 2 }) });
    await w.policy.onAuthFailure('203.0.113.1', 'alice@acme.example');
    await w.policy.onAuthFailure('203.0.113.2', 'alice@acme.example');
    await w.locks.unlock(w.user.id, 'operator', 'password reset');
    expect(await w.policy.isAuthBlocked('198.51.100.1', 'alice@acme.example')).toBeUndefined();
  });
});
