// The ingress's IP-user lookup: ranges filed by network, and a brief cache of found users only.
import { describe, expect, it } from 'vitest';
import { cachedIpUserLookup, ipAddressBuckets, ipRangeBucket } from '../../core/ip-user-lookup.js';
import type { OutgoingUser } from '../../core/identity.js';

const user = (id: string): OutgoingUser => ({ id, tenantId: 't1', kind: 'ip', identity: '192.0.2.0/24', domain: null, passwordHash: null, settings: {}, createdAt: 0 });

describe('IP user buckets', () => {
  it('files a range under its /16 (IPv4) or /32 (IPv6) network, wider ranges under "wide"', () => {
    expect(ipRangeBucket('192.0.2.7/24')).toBe('4:192.0');
    expect(ipRangeBucket('192.0.2.7/16')).toBe('4:192.0');
    expect(ipRangeBucket('10.0.0.0/8')).toBe('4:wide');
    expect(ipRangeBucket('2001:DB8:0:1::/64')).toBe('6:2001:db8');
    expect(ipRangeBucket('2001:db8::/16')).toBe('6:wide');
  });

  it('looks a client address up in its own bucket and its family\'s wide one', () => {
    expect(ipAddressBuckets('192.0.2.200')).toEqual(['4:192.0', '4:wide']);
    expect(ipAddressBuckets('::ffff:192.0.2.200')).toEqual(['4:192.0', '4:wide']);
    expect(ipAddressBuckets('2001:db8::1')).toEqual(['6:2001:db8', '6:wide']);
    expect(ipAddressBuckets('nonsense')).toEqual([]);
  });
});

describe('cachedIpUserLookup', () => {
  it('keeps a found user for the cache time, and never keeps "none"', async () => {
    let now = 0;
    let answer: OutgoingUser | undefined;
    let lookups = 0;
    const find = cachedIpUserLookup({ findIpUser: async () => (lookups++, answer) }, { now: () => now, ttlMs: 5000 });
    expect(await find('192.0.2.1')).toBeUndefined();
    answer = user('u1');
    expect((await find('192.0.2.1'))?.id).toBe('u1');
    answer = undefined;
    now = 4999;
    expect((await find('192.0.2.1'))?.id, 'still cached').toBe('u1');
    expect(lookups).toBe(2);
    now = 5000;
    expect(await find('192.0.2.1'), 'expired: the removal shows').toBeUndefined();
    expect(lookups).toBe(3);
  });

  it('asks again after a failed lookup', async () => {
    let fail = true;
    const find = cachedIpUserLookup({ findIpUser: async () => { if (fail) throw new Error('store down'); return user('u1'); } }, { now: () => 0 });
    await expect(find('192.0.2.1')).rejects.toThrow('store down');
    fail = false;
    expect((await find('192.0.2.1'))?.id).toBe('u1');
  });
});
