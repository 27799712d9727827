// Sending domains and who may claim them. A domain added by the operator is verified at once (the
// operator vouches for it); one added with a tenant key is a pending claim until the tenant
// publishes a TXT record carrying the claim's token, as SES, Mailgun and Postmark verify domains.
// Several tenants may claim the same domain: a claim blocks nobody, the first to prove it wins
// and the other claims are dropped.
import { randomBytes } from 'node:crypto';
import { getDomain as registrableDomain, parse } from 'tldts';
import { IdentityError } from './identity.js';
import type { Resolver } from './ports.js';

/** A domain claimed with a tenant key and not proven yet. */
export interface DomainClaim {
  name: string;
  tenantId: string;
  token: string;
  createdAt: number;
}

/** The name of the TXT record that proves a claim: `_outpost-verify.<domain>`. */
export const verificationName = (domain: string): string => `_outpost-verify.${domain}`;
/** The value the TXT record must hold. */
export const verificationValue = (token: string): string => `outpost-verify=${token}`;

/** 128 random bits, hex: safe in any DNS console and unguessable. */
export const newVerificationToken = (): string => randomBytes(16).toString('hex');

const PSL = { allowPrivateDomains: true } as const;

/**
 * Refuses names nobody may serve: public suffixes (`co.uk`, `github.io`) — a claim on one would
 * cover every domain under it. Operator and tenants alike.
 */
export function assertNotPublicSuffix(domain: string): void {
  if (parse(domain, PSL).domain === null) {
    throw new IdentityError(`${domain} is a public suffix (publicsuffix.org): register a domain under it and add that one`);
  }
}

/**
 * Refuses, for tenants, the relay's own domain: its host name, its registrable domain and
 * anything under that (bounce addresses and notices are written in it).
 */
export function assertNotRelayDomain(domain: string, relayHostname: string | undefined): void {
  if (!relayHostname) return;
  const own = registrableDomain(relayHostname, PSL) ?? relayHostname;
  for (const reserved of new Set([relayHostname.toLowerCase(), own.toLowerCase()])) {
    if (domain === reserved || domain.endsWith(`.${reserved}`)) {
      throw new IdentityError(`${domain} belongs to the relay itself (${reserved}); only the operator can assign it`);
    }
  }
}

/** `a.b.example.org` → [`a.b.example.org`, `b.example.org`, `example.org`]: the domain and its parents with two labels or more. */
export function domainAndParents(domain: string): string[] {
  const labels = domain.split('.');
  const out: string[] = [];
  for (let i = 0; i <= labels.length - 2; i++) out.push(labels.slice(i).join('.'));
  return out;
}

export type VerificationOutcome = { proven: true } | { proven: false; why: string };

/** Looks the claim's TXT record up; any DNS trouble is "not proven (yet)", never an error. */
export async function lookUpVerification(resolver: Resolver, claim: DomainClaim): Promise<VerificationOutcome> {
  const name = verificationName(claim.name);
  const expected = verificationValue(claim.token);
  let records: string[][];
  try {
    records = await resolver.resolveTxt(name);
  } catch (error: unknown) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'error';
    return { proven: false, why: `no TXT record at ${name} (${code})` };
  }
  // A TXT record may be split into strings of at most 255 characters: they join into one value.
  const values = records.map((parts) => parts.join('').trim());
  if (values.includes(expected)) return { proven: true };
  return { proven: false, why: `the TXT records at ${name} do not hold "${expected}" (found ${values.length})` };
}
