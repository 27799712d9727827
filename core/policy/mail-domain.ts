// Does a domain accept mail? Asked through the injected Resolver: an MX, else an A or AAAA
// record (RFC 5321 5.1 implicit MX). A null MX (RFC 7505, "." ) means it accepts none.
import { andThen, andThenOr, attempt, firstOf, type Maybe } from '../maybe.js';
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
  const withoutMx = () =>
    andThen(firstOf(ADDRESS_LOOKUPS, ([via, lookup]) => addressAnswer(via, attempt(() => lookup(resolver, domain)))), (answer): MailDomainAnswer => answer ?? { accepts: false, why: 'no-records' });
  return andThenOr<MxRecords, MailDomainAnswer>(
    attempt(() => resolver.resolveMx(domain)),
    (mx) => (mx.length > 0 ? fromMx(mx) : withoutMx()),
    (error) => (isNoData(error) ? withoutMx() : unknown(error)),
  );
}

function fromMx(mx: MxRecords): MailDomainAnswer {
  const isNull = mx.every((record) => record.exchange === '' || record.exchange === '.');
  return isNull ? { accepts: false, why: 'null-mx' } : { accepts: true, via: 'MX' };
}

const unknown = (error: unknown): MailDomainAnswer => ({ accepts: 'unknown', error: describe(error) });

/** RFC 5321 5.1 implicit MX: an A record, else an AAAA record. */
const ADDRESS_LOOKUPS = [
  ['A', (resolver: Resolver, name: string) => resolver.resolve4(name)],
  ['AAAA', (resolver: Resolver, name: string) => resolver.resolve6(name)],
] as const;

/** An address lookup's answer: the domain accepts mail, or unknown; undefined (ask the next) when it has no such records. */
function addressAnswer(via: 'A' | 'AAAA', records: Maybe<string[]>): Maybe<MailDomainAnswer | undefined> {
  return andThenOr(
    records,
    (addresses): MailDomainAnswer | undefined => (addresses.length > 0 ? { accepts: true, via } : undefined),
    (error) => (isNoData(error) ? undefined : unknown(error)),
  );
}
