// Does a domain accept mail? Asked through the injected Resolver: an MX, else an A or AAAA
// record (RFC 5321 5.1 implicit MX). A null MX (RFC 7505, "." ) means it accepts none.
import { attempt, failure, type Maybe } from '../maybe.js';
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

type MxRecords = Array<{ exchange: string; priority: number }>;

/**
 * At once when the resolver has the answers in memory (core/maybe.ts), as it has for the domains
 * a sender uses every message: its records, or the kept "no such records" (`rejected`).
 */
export function mailDomain(resolver: Resolver, domain: string): Maybe<MailDomainAnswer> {
  const mx = attempt(() => resolver.resolveMx(domain));
  if (!(mx instanceof Promise)) return mx.length > 0 ? fromMx(mx) : addressRecords(resolver, domain, 0);
  const failed = failure(mx);
  if (!failed) return mx.then((records) => (records.length > 0 ? fromMx(records) : addressRecords(resolver, domain, 0)), (error: unknown) => afterError(error, () => addressRecords(resolver, domain, 0)));
  return afterError(failed.error, () => addressRecords(resolver, domain, 0));
}

function fromMx(mx: MxRecords): MailDomainAnswer {
  const isNull = mx.every((record) => record.exchange === '' || record.exchange === '.');
  return isNull ? { accepts: false, why: 'null-mx' } : { accepts: true, via: 'MX' };
}

/** No records of the type: the next question; any other error: unknown. */
function afterError(error: unknown, next: () => Maybe<MailDomainAnswer>): Maybe<MailDomainAnswer> {
  return isNoData(error) ? next() : { accepts: 'unknown', error: describe(error) };
}

const ADDRESS_LOOKUPS = [
  ['A', (resolver: Resolver, name: string) => resolver.resolve4(name)],
  ['AAAA', (resolver: Resolver, name: string) => resolver.resolve6(name)],
] as const;

/** RFC 5321 5.1 implicit MX: an A record, else an AAAA record, from the `from`th lookup on. */
function addressRecords(resolver: Resolver, domain: string, from: number): Maybe<MailDomainAnswer> {
  for (let i = from; i < ADDRESS_LOOKUPS.length; i++) {
    const [via, lookup] = ADDRESS_LOOKUPS[i] as (typeof ADDRESS_LOOKUPS)[number];
    const next = () => addressRecords(resolver, domain, i + 1);
    const answer = attempt(() => lookup(resolver, domain));
    if (answer instanceof Promise) {
      const failed = failure(answer);
      if (!failed) return answer.then((records) => (records.length > 0 ? { accepts: true, via } : next()), (error: unknown) => afterError(error, next));
      if (!isNoData(failed.error)) return { accepts: 'unknown', error: describe(failed.error) };
    } else if (answer.length > 0) return { accepts: true, via };
  }
  return { accepts: false, why: 'no-records' };
}
