// createResolver against a real DNS server on loopback (a minimal UDP responder written here:
// no DNS server package is installed), so that routing's reading of node:dns errors and of the
// null MX is checked against what node:dns really reports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../../adapters/local/dns.js';
import { routeDomain } from '../../../core/delivery/route.js';
import { a, mx, startDnsServer, txt, type DnsServer, type Zone } from '../../helpers/dns-server.js';

const zone: Zone = {
  'example.test': [mx(20, 'backup.example.test'), mx(10, 'mx.example.test')],
  'mx.example.test': [a('127.0.0.1')],
  'backup.example.test': [a('127.0.0.2')],
  'nullmx.test': [mx(0, '.')],
  'implicit.test': [a('127.0.0.3'), txt('v=spf1 -all')],
  'servfail.test': 'SERVFAIL',
  'silent.test': 'SILENT',
};

describe('createResolver (node:dns on the configured servers)', () => {
  let server: DnsServer;
  beforeAll(async () => {
    server = await startDnsServer(zone);
  });
  afterAll(async () => {
    await server.stop();
  });

  const resolver = () => createResolver({ servers: [server.address], timeoutMs: 300 });

  it('asks the configured server (host:port) for MX and A records', async () => {
    expect(await resolver().resolveMx('example.test')).toEqual(
      expect.arrayContaining([
        { exchange: 'mx.example.test', priority: 10 },
        { exchange: 'backup.example.test', priority: 20 },
      ]),
    );
    expect(await resolver().resolve4('mx.example.test')).toEqual(['127.0.0.1']);
    expect(await resolver().resolveTxt('implicit.test')).toEqual([['v=spf1 -all']]);
  });

  it('reports NXDOMAIN as ENOTFOUND, no records as ENODATA and SERVFAIL as ESERVFAIL', async () => {
    await expect(resolver().resolveMx('absent.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver().resolveMx('implicit.test')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolver().resolveMx('servfail.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
  });

  it('gives up after its timeout on a server that does not answer', async () => {
    const started = Date.now();
    await expect(resolver().resolveMx('silent.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('lets routing tell MX, implicit MX, null MX, NXDOMAIN and SERVFAIL apart', async () => {
    // The test zone's mail hosts are on loopback: allowed here, skipped by default (route.test.ts).
    const options = { resolver: resolver(), mxPort: 2525, allowPrivateAddresses: true };
    expect(await routeDomain('example.test', options)).toEqual({
      kind: 'targets',
      targets: [
        { name: 'mx.example.test', address: '127.0.0.1', port: 2525 },
        { name: 'backup.example.test', address: '127.0.0.2', port: 2525 },
      ],
    });
    expect(await routeDomain('implicit.test', options)).toEqual({ kind: 'targets', targets: [{ name: 'implicit.test', address: '127.0.0.3', port: 2525 }] });
    expect(await routeDomain('nullmx.test', options)).toMatchObject({ kind: 'failed', temporary: false, status: '5.1.10' });
    expect(await routeDomain('absent.test', options)).toMatchObject({ kind: 'failed', temporary: false, status: '5.1.2' });
    expect(await routeDomain('servfail.test', options)).toMatchObject({ kind: 'failed', temporary: true });
    expect(await routeDomain('silent.test', options)).toMatchObject({ kind: 'failed', temporary: true });
  });
});
