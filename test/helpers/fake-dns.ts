// A fake DNS zone declared as data (in the style of mailauth's test/helpers/dns-zone.js): a name
// missing from the zone is NXDOMAIN (ENOTFOUND), a name without the asked type is ENODATA, and a
// name mapped to 'SERVFAIL' or 'TIMEOUT' fails like a broken server (ESERVFAIL, ETIMEOUT) for
// every type. Errors carry node:dns's code, syscall and hostname. Every query is recorded.
import type { Resolver } from '../../core/ports.js';

export interface ZoneEntry {
  MX?: Array<{ exchange: string; priority: number }>;
  A?: string[];
  AAAA?: string[];
  TXT?: string[][];
}

export type Zone = Record<string, ZoneEntry | 'SERVFAIL' | 'TIMEOUT'>;

export interface DnsQuery {
  type: 'MX' | 'A' | 'AAAA' | 'TXT';
  name: string;
}

export interface FakeResolver extends Resolver {
  calls: DnsQuery[];
}

// node:dns's syscall names for each query type.
const SYSCALL: Record<DnsQuery['type'], string> = { MX: 'queryMx', A: 'queryA', AAAA: 'queryAaaa', TXT: 'queryTxt' };

function dnsError(code: string, type: DnsQuery['type'], name: string): Error {
  const syscall = SYSCALL[type];
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code, hostname: name, syscall });
}

export function fakeResolver(zone: Zone): FakeResolver {
  const calls: DnsQuery[] = [];
  const lookup = async <K extends DnsQuery['type']>(type: K, name: string): Promise<NonNullable<ZoneEntry[K]>> => {
    calls.push({ type, name });
    const key = name.toLowerCase().replace(/\.$/, '');
    const entry = zone[key];
    if (entry === undefined) throw dnsError('ENOTFOUND', type, name);
    if (entry === 'SERVFAIL') throw dnsError('ESERVFAIL', type, name);
    if (entry === 'TIMEOUT') throw dnsError('ETIMEOUT', type, name);
    const records = entry[type];
    if (records === undefined || records.length === 0) throw dnsError('ENODATA', type, name);
    return records as NonNullable<ZoneEntry[K]>;
  };
  return {
    calls,
    resolveMx: (name) => lookup('MX', name),
    resolve4: (name) => lookup('A', name),
    resolve6: (name) => lookup('AAAA', name),
    resolveTxt: (name) => lookup('TXT', name),
  };
}
