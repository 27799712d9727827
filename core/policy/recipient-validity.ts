// RCPT: the recipient must be a valid address in a domain that accepts mail (asked through the
// Resolver). A bad one is refused and counted towards the invalid recipient limit; a DNS failure
// is a tempfail and is not counted.
import { pass, reject, tempfail, type Check, type Symbol } from '../checks/check.js';
import type { RcptToFacts } from '../checks/session.js';
import { andThen } from '../maybe.js';
import type { Resolver } from '../ports.js';
import { parseMailbox } from './address.js';
import { recordInvalidRecipients, type InvalidRecipientDeps } from './invalid-recipients.js';
import { mailDomain } from './mail-domain.js';
import { PolicySymbol } from './symbols.js';

export function recipientValidity(deps: InvalidRecipientDeps & { resolver: Resolver }): Check<RcptToFacts> {
  const refuse = async (facts: RcptToFacts, code: number, enhanced: string, text: string, symbol: Symbol) => {
    const limitSymbol = await recordInvalidRecipients(deps, facts.sender.user, facts.sender.settings, 1, {
      last: facts.rcptTo,
      why: symbol.name,
    });
    return reject(code, enhanced, text, limitSymbol ? [symbol, limitSymbol] : [symbol]);
  };
  return {
    name: 'recipient-validity',
    // At once when the recipient domain's records are in the resolver's memory (core/maybe.ts).
    check(facts) {
      const mailbox = parseMailbox(facts.rcptTo);
      if (!mailbox) {
        return refuse(facts, 553, '5.1.3', `Recipient <${facts.rcptTo}> is not a valid address`, {
          name: PolicySymbol.RECIPIENT_SYNTAX_INVALID,
          evidence: { rcptTo: facts.rcptTo },
        });
      }
      return andThen(mailDomain(deps.resolver, mailbox.domain), (answer) => {
        if (answer.accepts === 'unknown') {
          return tempfail(451, '4.4.3', `Could not look up the recipient domain ${mailbox.domain}; try again later`, [
            { name: PolicySymbol.RECIPIENT_DOMAIN_DNS_TEMPFAIL, evidence: { domain: mailbox.domain, error: answer.error } },
          ]);
        }
        if (!answer.accepts) {
          return refuse(facts, 550, '5.1.2', `Recipient domain ${mailbox.domain} does not accept mail (no MX or A record); check the address`, {
            name: PolicySymbol.RECIPIENT_DOMAIN_UNRESOLVABLE,
            evidence: { rcptTo: facts.rcptTo, domain: mailbox.domain, why: answer.why },
          });
        }
        return pass();
      });
    },
  };
}
