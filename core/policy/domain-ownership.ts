// Whose domain is it? An address in a domain verified by another tenant — or in a subdomain of
// one, unless the sender's tenant verified that subdomain itself — is refused for every kind of
// user whatever its settings (sendAsAnyAddress, requireValidSender): no tenant sends as another.
// A domain still pending for the sender's own tenant is refused too: it is not proven yet.
// Domains nobody has verified stay usable by IP and sendAsAnyAddress users, as before.
import { pass, reject, type Check, type CheckResult } from '../checks/check.js';
import type { DataFacts, MailFromFacts } from '../checks/session.js';
import { domainAndParents } from '../domains.js';
import type { ConfigStore } from '../stores.js';
import { attempt, andThen, type Maybe } from '../maybe.js';
import { headerFromAddresses, parseMailbox, type Mailbox } from './address.js';
import { PolicySymbol } from './symbols.js';

export type DomainUse = { allowed: true } | { allowed: false; why: 'other-tenant' | 'pending'; domain: string };

type Lookup = Pick<ConfigStore, 'getDomain' | 'getDomainClaim'>;

/**
 * May `tenantId` send from an address in `domain`? The most specific verified domain decides. At
 * once when the store answers each read from memory (core/maybe.ts); through promises from the
 * first read that does not.
 */
export function domainUse(configStore: Lookup, tenantId: string, domain: string): Maybe<DomainUse> {
  const chain = domainAndParents(domain);
  for (let i = 0; i < chain.length; i++) {
    const name = chain[i] as string;
    const served = attempt(() => configStore.getDomain(name));
    if (served instanceof Promise) return served.then((found) => (found ? servedBy(found.tenantId, tenantId, name) : domainUseFrom(configStore, tenantId, chain, i + 1)));
    if (served) return servedBy(served.tenantId, tenantId, name);
  }
  for (let i = 0; i < chain.length; i++) {
    const name = chain[i] as string;
    const claim = attempt(() => configStore.getDomainClaim(tenantId, name));
    if (claim instanceof Promise) return claim.then((found) => (found ? pending(name) : claimsFrom(configStore, tenantId, chain, i + 1)));
    if (claim) return pending(name);
  }
  return { allowed: true };
}

const servedBy = (owner: string, tenantId: string, name: string): DomainUse => (owner === tenantId ? { allowed: true } : { allowed: false, why: 'other-tenant', domain: name });
const pending = (name: string): DomainUse => ({ allowed: false, why: 'pending', domain: name });

/** domainUse from the `from`th name of the chain on, once a read answered with a promise. */
async function domainUseFrom(configStore: Lookup, tenantId: string, chain: string[], from: number): Promise<DomainUse> {
  for (const name of chain.slice(from)) {
    const served = await configStore.getDomain(name);
    if (served) return servedBy(served.tenantId, tenantId, name);
  }
  return claimsFrom(configStore, tenantId, chain, 0);
}

async function claimsFrom(configStore: Lookup, tenantId: string, chain: string[], from: number): Promise<DomainUse> {
  for (const name of chain.slice(from)) {
    if (await configStore.getDomainClaim(tenantId, name)) return pending(name);
  }
  return { allowed: true };
}

function refusal(use: Exclude<DomainUse, { allowed: true }>, address: string, where: 'envelope' | 'header') {
  const evidence = { address, domain: use.domain };
  if (use.why === 'pending') {
    return reject(550, '5.7.1', `${use.domain} is not verified yet: publish its _outpost-verify TXT record and verify it before sending as <${address}>`, [
      { name: where === 'envelope' ? PolicySymbol.SENDER_DOMAIN_PENDING : PolicySymbol.HEADER_FROM_DOMAIN_PENDING, evidence },
    ]);
  }
  return reject(550, '5.7.1', `<${address}> is in ${use.domain}, a domain of another tenant; send only from your own domains`, [
    { name: where === 'envelope' ? PolicySymbol.SENDER_DOMAIN_OF_OTHER_TENANT : PolicySymbol.HEADER_FROM_DOMAIN_OF_OTHER_TENANT, evidence },
  ]);
}

/** MAIL FROM: the envelope sender's domain belongs to the sender's tenant or to nobody. */
export function envelopeDomainOwnership(configStore: Lookup): Check<MailFromFacts> {
  return {
    name: 'envelope-domain-ownership',
    check(facts) {
      if (facts.mailFrom === '') return pass();
      const mailbox = parseMailbox(facts.mailFrom);
      // An address the rule cannot read is refused by envelope-send-as, whatever requireValidSender says.
      if (!mailbox) return pass();
      return andThen(domainUse(configStore, facts.sender.tenant.id, mailbox.domain), (use) => (use.allowed ? pass() : refusal(use, `${mailbox.local}@${mailbox.domain}`, 'envelope')));
    },
  };
}

/** DATA: every address of the header From belongs to the sender's tenant or to nobody. */
export function headerFromDomainOwnership(configStore: Lookup): Check<DataFacts> {
  return {
    name: 'header-from-domain-ownership',
    check(facts) {
      // header-from (which runs first) has refused anything but exactly one valid From.
      const { mailboxes } = headerFromAddresses(facts.headerFrom[0] ?? '');
      return everyMailbox(configStore, facts.sender.tenant.id, mailboxes, 0);
    },
  };
}

/** The header From's mailboxes from the `from`th on, each at once while the reads answer at once. */
function everyMailbox(configStore: Lookup, tenantId: string, mailboxes: ReadonlyArray<Readonly<Mailbox>>, from: number): Maybe<CheckResult> {
  for (let i = from; i < mailboxes.length; i++) {
    const mailbox = mailboxes[i] as Readonly<Mailbox>;
    const use = domainUse(configStore, tenantId, mailbox.domain);
    const decide = (answer: DomainUse) => (answer.allowed ? undefined : refusal(answer, `${mailbox.local}@${mailbox.domain}`, 'header'));
    if (use instanceof Promise) return use.then((answer) => decide(answer) ?? everyMailbox(configStore, tenantId, mailboxes, i + 1));
    const refused = decide(use);
    if (refused) return refused;
  }
  return pass();
}
