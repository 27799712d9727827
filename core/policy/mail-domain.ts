// Does a domain accept mail? Asked through the injected Resolver: an MX, else an A or AAAA
// record (RFC 5321 5.1 implicit MX). A null MX (RFC 7505, "." ) means it accepts none.
import type { Resolver } from '../ports.js';

export type MailDomainAnswer =
  | { accepts: true; via: 'MX' | 'A' | 'AAAA' }
  | { accepts: false; why: 'no-records' | 'null-mx' }
  | { accepts: 'unknown'; error: string };

/** NXDOMAIN and "no records of this type": an answer, not a failure. */
function isNoData(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

function describe(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) return String(error.code);
  return error instanceof Error ? error.message : String(error);
}

export async function mailDomain(resolver: Resolver, domain: string): Promise<MailDomainAnswer> {
  try {
    const mx = await resolver.resolveMx(domain);
    if (mx.length > 0) {
      const isNull = mx.every((record) => record.exchange === '' || record.exchange === '.');
      return isNull ? { accepts: false, why: 'null-mx' } : { accepts: true, via: 'MX' };
    }
  } catch (error: unknown) {
    if (!isNoData(error)) return { accepts: 'unknown', error: describe(error) };
  }
  for (const [via, lookup] of [
    ['A', (name: string) => resolver.resolve4(name)],
    ['AAAA', (name: string) => resolver.resolve6(name)],
  ] as const) {
    try {
      if ((await lookup(domain)).length > 0) return { accepts: true, via };
    } catch (error: unknown) {
      if (!isNoData(error)) return { accepts: 'unknown', error: describe(error) };
    }
  }
  return { accepts: false, why: 'no-records' };
}
