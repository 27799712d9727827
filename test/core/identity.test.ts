import { describe, expect, it } from 'vitest';
import { cidrContains, hashPassword, IdentityError, matchIpUser, parseIdentity, verifyPassword } from '../../core/identity.js';

describe('parseIdentity', () => {
  it('tells the three kinds of outgoing user apart and normalises them', () => {
    expect(parseIdentity(' Alice@Acme.Example ')).toEqual({ kind: 'mailbox', identity: 'alice@acme.example', domain: 'acme.example' });
    expect(parseIdentity('Acme.Example.')).toEqual({ kind: 'domain', identity: 'acme.example', domain: 'acme.example' });
    expect(parseIdentity('192.0.2.10')).toEqual({ kind: 'ip', identity: '192.0.2.10/32', domain: null });
    expect(parseIdentity('2001:DB8::/32')).toEqual({ kind: 'ip', identity: '2001:db8::/32', domain: null });
  });

  it('refuses what is none of them', () => {
    for (const bad of ['', 'alice@', '@acme.example', 'a..b@acme.example', 'no_domain', '192.0.2.1/33', '300.1.1.1', 'acme']) {
      expect(() => parseIdentity(bad), bad).toThrow(IdentityError);
    }
  });
});

describe('IP ranges', () => {
  it('match addresses inside the range, IPv4-mapped IPv6 included, and nothing outside', () => {
    expect(cidrContains('192.0.2.0/24', '192.0.2.77')).toBe(true);
    expect(cidrContains('192.0.2.0/24', '::ffff:192.0.2.77')).toBe(true);
    expect(cidrContains('192.0.2.0/24', '192.0.3.1')).toBe(false);
    expect(cidrContains('2001:db8::/32', '2001:db8:1::5')).toBe(true);
    expect(cidrContains('2001:db8::/32', '2001:db9::5')).toBe(false);
    expect(cidrContains('192.0.2.0/24', '2001:db8::1')).toBe(false);
  });

  it('pick the most specific IP user', () => {
    const users = [{ identity: '192.0.0.0/16', id: 'wide' }, { identity: '192.0.2.0/24', id: 'narrow' }, { identity: '198.51.100.0/24', id: 'other' }];
    expect(matchIpUser(users, '192.0.2.9')?.id).toBe('narrow');
    expect(matchIpUser(users, '192.0.9.9')?.id).toBe('wide');
    expect(matchIpUser(users, '203.0.113.1')).toBeUndefined();
  });
});

describe('passwords', () => {
  it('are stored as salted scrypt hashes and verified', async () => {
    const first = await hashPassword('correct horse battery');
    const second = await hashPassword('correct horse battery');
    expect(first).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(first).not.toBe(second);
    expect(first).not.toContain('correct horse');
    expect(await verifyPassword('correct horse battery', first)).toBe(true);
    expect(await verifyPassword('correct horse batterY', first)).toBe(false);
    expect(await verifyPassword('correct horse battery', null)).toBe(false);
    expect(await verifyPassword('anything', 'garbage')).toBe(false);
  });

  it('refuse passwords shorter than 8 characters', async () => {
    await expect(hashPassword('short')).rejects.toThrow(IdentityError);
  });
});
