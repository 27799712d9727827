import { describe, expect, it } from 'vitest';
import { rateSource } from '../../smtp-ec2/bounce-listener.js';

describe('rateSource (the unit the bounce listener counts a source address by)', () => {
  it('counts an IPv4 address, IPv4-mapped or not, by itself', () => {
    expect(rateSource('192.0.2.7')).toBe('192.0.2.7');
    expect(rateSource('::ffff:192.0.2.7')).toBe('192.0.2.7');
  });

  it('counts every address of one IPv6 /64 as one source', () => {
    expect(rateSource('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(rateSource('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(rateSource('2001:db8::7')).toBe('2001:db8:0:0::/64');
    expect(rateSource('::1')).toBe('0:0:0:0::/64');
  });
});
