import { describe, expect, it } from 'vitest';
import { parseHostPort, recipientDomain, routeDomain } from '../../../core/delivery/route.js';
import { fakeResolver, type Zone } from '../../helpers/fake-dns.js';

const zone: Zone = {
  'example.test': {
    MX: [
      { exchange: 'backup.example.test', priority: 20 },
      { exchange: 'mx1.example.test', priority: 10 },
    ],
  },
  'mx1.example.test': { A: ['192.0.2.10'], AAAA: ['2001:db8::10'] },
  'backup.example.test': { A: ['192.0.2.20'] },
  'implicit.test': { A: ['192.0.2.30'], TXT: [['v=spf1 -all']] },
  'nomail.test': { MX: [{ exchange: '', priority: 0 }] },
  'nomail-dot.test': { MX: [{ exchange: '.', priority: 0 }] },
  'nothing.test': { TXT: [['just text']] },
  'broken.test': 'SERVFAIL',
  'slow.test': 'TIMEOUT',
  'dangling.test': { MX: [{ exchange: 'gone.dangling.test', priority: 10 }] },
  'flaky-mx.test': { MX: [{ exchange: 'mx.flaky-mx.test', priority: 10 }] },
  'mx.flaky-mx.test': 'TIMEOUT',
  'relay.test': { A: ['192.0.2.99'] },
  'inside.test': { MX: [{ exchange: 'mx1.inside.test', priority: 10 }, { exchange: 'mx2.inside.test', priority: 20 }] },
  'mx1.inside.test': { A: ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254'], AAAA: ['::1', 'fe80::1', 'fd00::5', '::ffff:127.0.0.1'] },
  'mx2.inside.test': { A: ['100.64.0.1', '0.0.0.0'] },
  'mixed.test': { MX: [{ exchange: 'mx.inside-first.test', priority: 10 }, { exchange: 'mx.public.test', priority: 20 }] },
  'mx.inside-first.test': { A: ['10.0.0.25'] },
  'mx.public.test': { A: ['192.0.2.25'] },
  'implicit-inside.test': { A: ['192.168.0.10'] },
};

describe('routeDomain', () => {
  it('orders MX hosts by priority and resolves each to its IPv4 then IPv6 addresses on the MX port', async () => {
    const route = await routeDomain('example.test', { resolver: fakeResolver(zone), mxPort: 2525 });
    expect(route).toEqual({
      kind: 'targets',
      targets: [
        { name: 'mx1.example.test', address: '192.0.2.10', port: 2525 },
        { name: 'mx1.example.test', address: '2001:db8::10', port: 2525 },
        { name: 'backup.example.test', address: '192.0.2.20', port: 2525 },
      ],
    });
  });

  it('uses port 25 for MX hosts unless told otherwise', async () => {
    const route = await routeDomain('implicit.test', { resolver: fakeResolver(zone) });
    expect(route).toEqual({ kind: 'targets', targets: [{ name: 'implicit.test', address: '192.0.2.30', port: 25 }] });
  });

  it('falls back to the domain’s own address when it has no MX records (implicit MX)', async () => {
    const resolver = fakeResolver(zone);
    const route = await routeDomain('implicit.test', { resolver, mxPort: 2525 });
    expect(route).toEqual({ kind: 'targets', targets: [{ name: 'implicit.test', address: '192.0.2.30', port: 2525 }] });
    expect(resolver.calls[0]).toEqual({ type: 'MX', name: 'implicit.test' });
  });

  it('fails permanently with 5.1.10 for a null MX, with or without the trailing dot', async () => {
    for (const domain of ['nomail.test', 'nomail-dot.test']) {
      const route = await routeDomain(domain, { resolver: fakeResolver(zone) });
      expect(route).toMatchObject({ kind: 'failed', temporary: false, status: '5.1.10' });
    }
  });

  it('fails permanently for a domain that does not exist (NXDOMAIN)', async () => {
    const route = await routeDomain('no-such-domain.test', { resolver: fakeResolver(zone) });
    expect(route).toMatchObject({ kind: 'failed', temporary: false, status: '5.1.2' });
  });

  it('fails permanently for a domain with neither MX nor address records', async () => {
    const route = await routeDomain('nothing.test', { resolver: fakeResolver(zone) });
    expect(route).toMatchObject({ kind: 'failed', temporary: false, status: '5.1.2' });
  });

  it('fails temporarily on SERVFAIL and on DNS timeouts', async () => {
    for (const domain of ['broken.test', 'slow.test']) {
      const route = await routeDomain(domain, { resolver: fakeResolver(zone) });
      expect(route).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.3' });
    }
  });

  it('fails temporarily when the MX host times out or has no address', async () => {
    expect(await routeDomain('flaky-mx.test', { resolver: fakeResolver(zone) })).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.3' });
    expect(await routeDomain('dangling.test', { resolver: fakeResolver(zone) })).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.4' });
  });

  it('sends every domain to the relay host when one is configured, without MX lookups', async () => {
    const resolver = fakeResolver(zone);
    const route = await routeDomain('example.test', { relayHost: 'relay.test:587', resolver, mxPort: 2525 });
    // A smarthost given by name: its certificate is verified against that name.
    expect(route).toEqual({ kind: 'targets', targets: [{ name: 'relay.test', address: '192.0.2.99', port: 587, verifyTls: true }] });
    expect(resolver.calls.some((query) => query.type === 'MX')).toBe(false);
  });

  it('uses an IP relay host as is', async () => {
    const resolver = fakeResolver(zone);
    const route = await routeDomain('example.test', { relayHost: '127.0.0.1:2500', resolver });
    expect(route).toEqual({ kind: 'targets', targets: [{ name: '127.0.0.1', address: '127.0.0.1', port: 2500 }] });
    expect(resolver.calls).toEqual([]);
  });

  it('delivers to an address literal domain directly', async () => {
    const route = await routeDomain('[192.0.2.7]', { resolver: fakeResolver(zone), mxPort: 2525 });
    expect(route).toEqual({ kind: 'targets', targets: [{ name: '192.0.2.7', address: '192.0.2.7', port: 2525 }] });
  });
});

describe('routeDomain and internal addresses', () => {
  it('skips MX addresses on loopback, private and link-local networks, failing temporarily (4.4.4) when none is left', async () => {
    const route = await routeDomain('inside.test', { resolver: fakeResolver(zone) });
    expect(route).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.4' });
    if (route.kind !== 'failed') throw new Error('expected a failure');
    for (const address of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '::1', 'fe80::1', 'fd00::5', '::ffff:127.0.0.1', '100.64.0.1', '0.0.0.0']) {
      expect(route.diagnostic).toContain(`[${address}]`);
    }
    expect(route.diagnostic).toMatch(/allowPrivateMxAddresses/);
  });

  it('keeps the public addresses of a domain whose first MX is internal', async () => {
    expect(await routeDomain('mixed.test', { resolver: fakeResolver(zone) })).toEqual({ kind: 'targets', targets: [{ name: 'mx.public.test', address: '192.0.2.25', port: 25 }] });
  });

  it('skips an internal implicit MX and an internal address literal', async () => {
    expect(await routeDomain('implicit-inside.test', { resolver: fakeResolver(zone) })).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.4' });
    expect(await routeDomain('[127.0.0.1]', { resolver: fakeResolver(zone) })).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.4' });
    expect(await routeDomain('[IPv6:::1]', { resolver: fakeResolver(zone) })).toMatchObject({ kind: 'failed', temporary: true, status: '4.4.4' });
  });

  it('keeps them when allowPrivateAddresses is set, and never filters the smarthost', async () => {
    const allowed = await routeDomain('implicit-inside.test', { resolver: fakeResolver(zone), allowPrivateAddresses: true });
    expect(allowed).toEqual({ kind: 'targets', targets: [{ name: 'implicit-inside.test', address: '192.168.0.10', port: 25 }] });
    const relayed = await routeDomain('inside.test', { resolver: fakeResolver(zone), relayHost: '127.0.0.1:2500' });
    expect(relayed).toEqual({ kind: 'targets', targets: [{ name: '127.0.0.1', address: '127.0.0.1', port: 2500 }] });
  });
});

describe('address helpers', () => {
  it('takes the domain after the last @, lower-cased', () => {
    expect(recipientDomain('"a@b"@Example.TEST')).toBe('example.test');
  });

  it('splits host:port and [v6]:port', () => {
    expect(parseHostPort('smtp.example.net:587')).toEqual({ host: 'smtp.example.net', port: 587 });
    expect(parseHostPort('[2001:db8::1]:25')).toEqual({ host: '2001:db8::1', port: 25 });
    expect(() => parseHostPort('no-port')).toThrow(/host:port/);
  });
});
