// Whose domain is it? An address in a domain verified by another tenant — or in a subdomain of
// one, unless the sender's tenant verified that subdomain itself — is refused for every kind of
// user whatever its settings (sendAsAnyAddress, requireValidSender): no tenant sends as another.
// A domain still pending for the sender's own tenant is refused too: it is not proven yet.
// Domains nobody has verified stay usable by IP and sendAsAnyAddress users, as before.
import { pass, reject, type Check } from '../checks/check.js';
import type { DataFacts, MailFromFacts } from '../checks/session.js';
import { domainAndParents } from '../domains.js';
import type { ConfigStore } from '../stores.js';
import { andThen, firstOf, type Maybe } from '../maybe.js';
import { headerFromAddresses, parseMailbox } from './address.js';
import { PolicySymbol } from './symbols.js';

export type DomainUse = { allowed: true } | { allowed: false; why: 'other-tenant' | 'pending'; domain: string };

type Lookup = Pick<ConfigStore, 'getDomain' | 'getDomainClaim'>;

/**
 * May `tenantId` send from an address in `domain`? The most specific verified domain decides. At
 * once when the store answers each read from memory (core/maybe.ts).
 */
export function domainUse(configStore: Lookup, tenantId: string, domain: string): Maybe<DomainUse> {
  const chain = domainAndParents(domain);
  const served = (name: string) =>
    andThen(configStore.getDomain(name), (found): DomainUse | undefined => {
      if (!found) return undefined;
      return found.tenantId === tenantId ? { allowed: true } : { allowed: false, why: 'other-tenant', domain: name };
    });
  const pending = (name: string) => andThen(configStore.getDomainClaim(tenantId, name), (claim): DomainUse | undefined => (claim ? { allowed: false, why: 'pending', domain: name } : undefined));
  return andThen(firstOf(chain, served), (use) => use ?? andThen(firstOf(chain, pending), (claimed) => claimed ?? { allowed: true }));
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
      const refused = firstOf(mailboxes, (mailbox) =>
        andThen(domainUse(configStore, facts.sender.tenant.id, mailbox.domain), (use) => (use.allowed ? undefined : refusal(use, `${mailbox.local}@${mailbox.domain}`, 'header'))),
      );
      return andThen(refused, (result) => result ?? pass());
    },
  };
}
