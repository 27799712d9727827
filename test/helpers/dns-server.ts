// A small authoritative DNS server on loopback UDP, answering from a zone declared as data, so
// that Outpost's real resolver (OUTPOST_DNS_SERVERS) is exercised in tests without the internet.
// Names not in the zone answer NXDOMAIN; a name without the asked type answers NODATA.
import { createSocket, type Socket } from 'node:dgram';

export const TYPE = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;

export type Answer = { type: number; rdata: Buffer };
export type Entry = Answer[] | 'SERVFAIL' | 'SILENT';
export type Zone = Record<string, Entry>;

export function encodeName(name: string): Buffer {
  const labels = name.split('.').filter((label) => label.length > 0);
  return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'ascii')])), Buffer.from([0])]);
}

export const a = (ip: string): Answer => ({ type: TYPE.A, rdata: Buffer.from(ip.split('.').map(Number)) });
export const mx = (priority: number, exchange: string): Answer => {
  const preference = Buffer.alloc(2);
  preference.writeUInt16BE(priority);
  return { type: TYPE.MX, rdata: Buffer.concat([preference, encodeName(exchange)]) };
};
export const txt = (text: string): Answer => ({ type: TYPE.TXT, rdata: Buffer.concat([Buffer.from([text.length]), Buffer.from(text)]) });

export function answer(zone: Zone, query: Buffer): Buffer | undefined {
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
  header.writeUInt16BE(0x8580 | rcode, 2); // response, authoritative, RD, RA
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

export interface DnsServer {
  port: number;
  /** host:port for OUTPOST_DNS_SERVERS / config.dns.servers. */
  address: string;
  zone: Zone;
  stop(): Promise<void>;
}

/** Starts a DNS server; the zone object may be changed while it runs. */
export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const server: Socket = createSocket('udp4');
  server.on('message', (query, peer) => {
    const response = answer(zone, query);
    if (response) server.send(response, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    zone,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
