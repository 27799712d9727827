// createResolver against a real DNS server on loopback (a minimal UDP responder written here:
// no DNS server package is installed), so that routing's reading of node:dns errors and of the
// null MX is checked against what node:dns really reports.
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../../adapters/local/dns.js';
import { routeDomain } from '../../../core/delivery/route.js';

const TYPE = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;

type Answer = { type: number; rdata: Buffer };
type Entry = Answer[] | 'SERVFAIL' | 'SILENT';

function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((label) => label.length > 0);
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

const a = (ip: string): Answer => ({ type: TYPE.A, rdata: Buffer.from(ip.split('.').map(Number)) });
const mx = (priority: number, exchange: string): Answer => {
  const preference = Buffer.alloc(2);
  preference.writeUInt16BE(priority);
  return { type: TYPE.MX, rdata: Buffer.concat([preference, encodeName(exchange)]) };
};
const txt = (text: string): Answer => ({ type: TYPE.TXT, rdata: Buffer.concat([Buffer.from([text.length]), Buffer.from(text)]) });

const zone: Record<string, Entry> = {
  'example.test': [mx(20, 'backup.example.test'), mx(10, 'mx.example.test')],
  'mx.example.test': [a('127.0.0.1')],
  'backup.example.test': [a('127.0.0.2')],
  'nullmx.test': [mx(0, '.')],
  'implicit.test': [a('127.0.0.3'), txt('v=spf1 -all')],
  'servfail.test': 'SERVFAIL',
  'silent.test': 'SILENT',
};

function answer(query: Buffer): Buffer | undefined {
  let offset = 12;
  const labels: string[] = [];
  for (let length = query[offset] ?? 0; length > 0; length = query[offset] ?? 0) {
    labels.push(query.subarray(offset + 1, offset + 1 + length).toString('ascii'));
    offset += length + 1;
  }
  const questionEnd = offset + 5;
  const qtype = query.readUInt16BE(offset + 1);
  const entry = zone[labels.join('.').toLowerCase()];
  if (entry === 'SILENT') return undefined;
  const rcode = entry === undefined ? 3 : entry === 'SERVFAIL' ? 2 : 0;
  const answers = Array.isArray(entry) ? entry.filter((record) => record.type === qtype) : [];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(0x8180 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((record) => {
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question
    fixed.writeUInt16BE(record.type, 2);
    fixed.writeUInt16BE(1, 4);
    fixed.writeUInt32BE(60, 6);
    fixed.writeUInt16BE(record.rdata.length, 10);
    return Buffer.concat([fixed, record.rdata]);
  });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
}

describe('createResolver (node:dns on the configured servers)', () => {
  let server: Socket;
  let port = 0;
  beforeAll(async () => {
    server = createSocket('udp4');
    server.on('message', (query, peer) => {
      const response = answer(query);
      if (response) server.send(response, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    port = server.address().port;
  });
  afterAll(() => {
    server.close();
  });

  const resolver = () => createResolver({ servers: [`127.0.0.1:${port}`], timeoutMs: 300 });

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
    const options = { resolver: resolver(), mxPort: 2525 };
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
