// MAIL FROM sender rules of the seed: "Valid Sender Address Required", "Require FROM domain", and
// "a mailbox user may only send as itself" (setting sendAsAnyAddress). The same domain and
// send-as rules apply to the header From at DATA (header-from.ts).
import { pass, reject, tempfail, type Check } from '../checks/check.js';
import type { MailFromFacts, Sender } from '../checks/session.js';
import { andThen } from '../maybe.js';
import type { Resolver } from '../ports.js';
import { parseMailbox, sameMailbox, type Mailbox } from './address.js';
import { mailDomain } from './mail-domain.js';
import { PolicySymbol } from './symbols.js';

/** requireValidSender: syntax, not the null sender for authenticated users, a domain that resolves. */
export function validSender(resolver: Resolver): Check<MailFromFacts> {
  return {
    name: 'valid-sender',
    // At once when the sender domain's records are in the resolver's memory (core/maybe.ts).
    check(facts) {
      if (!facts.sender.settings.requireValidSender) return pass();
      if (facts.mailFrom === '') {
        // A smarthost relays DSNs with the null sender; an authenticated mail client has no reason to.
        if (facts.sender.via === 'ip') return pass();
        return reject(553, '5.7.1', 'A sender address is required: the null sender <> is not accepted from authenticated users', [
          { name: PolicySymbol.SENDER_NULL_NOT_ALLOWED, evidence: { identity: facts.sender.user.identity } },
        ]);
      }
      const mailbox = parseMailbox(facts.mailFrom);
      if (!mailbox) {
        return reject(553, '5.7.1', `Sender address <${facts.mailFrom}> is not a valid address; use a full address like name@example.org`, [
          { name: PolicySymbol.SENDER_SYNTAX_INVALID, evidence: { mailFrom: facts.mailFrom } },
        ]);
      }
      return andThen(mailDomain(resolver, mailbox.domain), (answer) => {
        if (answer.accepts === 'unknown') {
          return tempfail(451, '4.4.3', `Could not look up the sender domain ${mailbox.domain}; try again later`, [
            { name: PolicySymbol.SENDER_DOMAIN_DNS_TEMPFAIL, evidence: { domain: mailbox.domain, error: answer.error } },
          ]);
        }
        if (!answer.accepts) {
          return reject(550, '5.7.1', `Sender domain ${mailbox.domain} cannot receive mail (no MX, A or AAAA record); use a deliverable sender address`, [
            { name: PolicySymbol.SENDER_DOMAIN_UNRESOLVABLE, evidence: { domain: mailbox.domain, why: answer.why } },
          ]);
        }
        return pass();
      });
    },
  };
}

/** Whether requiredFromDomains admits this domain (exact match; empty list: any). */
export function domainAllowed(sender: Sender, domain: string): boolean {
  const required = sender.settings.requiredFromDomains;
  return required.length === 0 || required.includes(domain);
}

/** Whether the identity may use this address (mailbox: itself; domain: its domain; ip: any). */
export function mayUseAddress(sender: Sender, mailbox: Mailbox): boolean {
  if (sender.settings.sendAsAnyAddress) return true;
  const { user } = sender;
  if (user.kind === 'ip') return true;
  if (user.kind === 'domain') return mailbox.domain === user.domain;
  const own = parseMailbox(user.identity);
  return own !== undefined && sameMailbox(own, mailbox);
}

/** requiredFromDomains on the envelope sender. */
export function envelopeFromDomain(): Check<MailFromFacts> {
  return {
    name: 'envelope-from-domain',
    check(facts) {
      const required = facts.sender.settings.requiredFromDomains;
      if (required.length === 0) return pass();
      if (facts.mailFrom === '' && facts.sender.via === 'ip') return pass();
      const mailbox = parseMailbox(facts.mailFrom);
      if (mailbox && domainAllowed(facts.sender, mailbox.domain)) return pass();
      return reject(550, '5.7.1', `Sender <${facts.mailFrom}> is not in the domains allowed for ${facts.sender.user.identity} (${required.join(', ')})`, [
        { name: PolicySymbol.SENDER_DOMAIN_NOT_ALLOWED, evidence: { mailFrom: facts.mailFrom, allowed: required } },
      ]);
    },
  };
}

/** A mailbox user sends only as itself, a domain user only in its domain, unless sendAsAnyAddress. */
export function envelopeSendAs(): Check<MailFromFacts> {
  return {
    name: 'envelope-send-as',
    check(facts) {
      if (facts.mailFrom === '') return pass(); // the null sender is valid-sender's business
      const mailbox = parseMailbox(facts.mailFrom);
      if (!mailbox) {
        // Checked here, not only by valid-sender: requireValidSender=false must not open a way
        // around the send-as and domain rules with an address they cannot read.
        return reject(550, '5.7.1', `Sender <${facts.mailFrom}> is not an address whose domain can be checked; use a full address like name@example.org`, [
          { name: PolicySymbol.SENDER_UNCHECKABLE, evidence: { mailFrom: facts.mailFrom.slice(0, 200) } },
        ]);
      }
      if (mayUseAddress(facts.sender, mailbox)) return pass();
      const { user } = facts.sender;
      const may = user.kind === 'domain' ? `addresses of ${user.domain ?? user.identity}` : `<${user.identity}>`;
      return reject(550, '5.7.1', `${user.identity} may not send as <${facts.mailFrom}>; use ${may}`, [
        { name: PolicySymbol.SEND_AS_NOT_ALLOWED, evidence: { identity: user.identity, kind: user.kind, mailFrom: facts.mailFrom } },
      ]);
    },
  };
}
