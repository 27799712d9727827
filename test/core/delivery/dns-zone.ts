// A fake DNS zone declared as data (in the style of mailauth's test/helpers/dns-zone.js) that
// implements the Resolver port and records its queries. It fails like node:dns does: a name that
// is absent is NXDOMAIN (ENOTFOUND), a name without the asked type is ENODATA, and a name mapped
// to an error code fails with that code (ESERVFAIL, ETIMEOUT) for every type.
import type { Resolver } from '../../../core/ports.js';

export interface ZoneRecords {
  MX?: Array<{ exchange: string; priority: number }>;
  A?: string[];
  AAAA?: string[];
  TXT?: string[][];
}

export type Zone = Record<string, ZoneRecords | 'ESERVFAIL' | 'ETIMEOUT'>;

export interface FakeResolver extends Resolver {
  queries: Array<{ type: keyof ZoneRecords; name: string }>;
}

function dnsError(code: string, syscall: string, name: string): Error {
  return Object.assign(new Error(`${syscall} ${code} ${name}`), { code, syscall, hostname: name });
}

export function zoneResolver(zone: Zone): FakeResolver {
  const queries: FakeResolver['queries'] = [];
  function lookup<T extends keyof ZoneRecords>(type: T, syscall: string, name: string): NonNullable<ZoneRecords[T]> {
    queries.push({ type, name });
    const entry = zone[name.toLowerCase()];
    if (entry === undefined) throw dnsError('ENOTFOUND', syscall, name);
    if (typeof entry === 'string') throw dnsError(entry, syscall, name);
    const records = entry[type];
    if (records === undefined) throw dnsError('ENODATA', syscall, name);
    return records as NonNullable<ZoneRecords[T]>;
  }
  return {
    queries,
    resolveMx: async (name) => lookup('MX', 'queryMx', name),
    resolve4: async (name) => lookup('A', 'queryA', name),
    resolve6: async (name) => lookup('AAAA', 'queryAaaa', name),
    resolveTxt: async (name) => lookup('TXT', 'queryTxt', name),
  };
}
