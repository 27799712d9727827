// The admission checks' DNS cache (dns.cacheSeconds) against a real DNS server on loopback whose
// zone the test changes: what is kept, for how long, and what is never kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../../adapters/local/dns.js';
import { a, mx, startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

describe('createResolver with cacheSeconds', () => {
  let server: DnsServer;
  beforeAll(async () => {
    server = await startDnsServer({ 'kept.test': [a('127.0.0.1')], 'mx.test': [mx(10, 'mx1.mx.test')], 'flaky.test': 'SERVFAIL' });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('keeps an answer: a change in the zone is not seen until it expires, and never without the cache', async () => {
    const cached = createResolver({ servers: [server.address], timeoutMs: 500, cacheSeconds: 1 });
    const fresh = createResolver({ servers: [server.address], timeoutMs: 500, cacheSeconds: 0 });
    expect(await cached.resolve4('kept.test')).toEqual(['127.0.0.1']);
    expect(await cached.resolveMx('mx.test')).toEqual([{ exchange: 'mx1.mx.test', priority: 10 }]);
    server.zone['kept.test'] = [a('127.0.0.2')];
    server.zone['mx.test'] = [mx(10, 'mx2.mx.test')];
    expect(await cached.resolve4('kept.test')).toEqual(['127.0.0.1']);
    expect(await cached.resolveMx('mx.test')).toEqual([{ exchange: 'mx1.mx.test', priority: 10 }]);
    expect(await fresh.resolve4('kept.test')).toEqual(['127.0.0.2']);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await cached.resolve4('kept.test')).toEqual(['127.0.0.2']);
    expect(await cached.resolveMx('mx.test')).toEqual([{ exchange: 'mx2.mx.test', priority: 10 }]);
  });

  it('keeps NXDOMAIN, but never a failure such as SERVFAIL', async () => {
    const cached = createResolver({ servers: [server.address], timeoutMs: 500, cacheSeconds: 60 });
    await expect(cached.resolve4('later.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    server.zone['later.test'] = [a('127.0.0.3')];
    await expect(cached.resolve4('later.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(cached.resolve4('flaky.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    server.zone['flaky.test'] = [a('127.0.0.4')];
    expect(await cached.resolve4('flaky.test')).toEqual(['127.0.0.4']);
  });

  it('hands each caller its own copy: changing an answer does not change the cache', async () => {
    const cached = createResolver({ servers: [server.address], timeoutMs: 500, cacheSeconds: 60 });
    server.zone['copy.test'] = [a('127.0.0.5')];
    const [first, second] = await Promise.all([cached.resolve4('copy.test'), cached.resolve4('copy.test')]);
    first.push('10.0.0.1');
    expect(second).toEqual(['127.0.0.5']);
    const fromCache = await cached.resolve4('copy.test');
    fromCache.push('10.0.0.2');
    expect(await cached.resolve4('copy.test')).toEqual(['127.0.0.5']);
    // The records inside too: an MX record changed by one caller is not what the next one gets.
    server.zone['copy-mx.test'] = [mx(10, 'mx1.copy-mx.test')];
    const [record] = await cached.resolveMx('copy-mx.test');
    if (record) record.exchange = 'changed.test';
    const [again] = await cached.resolveMx('copy-mx.test');
    if (again) again.priority = 99;
    expect(await cached.resolveMx('copy-mx.test')).toEqual([{ exchange: 'mx1.copy-mx.test', priority: 10 }]);
  });
});
