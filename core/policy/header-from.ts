// DATA: the header From, read by parseHeaderFrom (the DKIM signer reads it with the same parser):
// exactly one From header (mailparser reads the first, DKIM verifiers the last: two would let a
// sender show one and sign another), every address in it a real mailbox, and each allowed by
// requiredFromDomains and the send-as rule.
import { pass, reject, type Check } from '../checks/check.js';
import type { DataFacts } from '../checks/session.js';
import { parseHeaderFrom } from '../headers.js';
import { domainAllowed, mayUseAddress } from './sender-rules.js';
import { PolicySymbol } from './symbols.js';

export function headerFrom(): Check<DataFacts> {
  return {
    name: 'header-from',
    check(facts) {
      const from = parseHeaderFrom(facts.headerFrom);
      if (!from.valid && from.problem === 'count') {
        return reject(550, '5.7.1', `The message must have exactly one From header; it has ${from.count}`, [
          { name: PolicySymbol.HEADER_FROM_COUNT, evidence: { count: from.count } },
        ]);
      }
      if (!from.valid) {
        return reject(550, '5.7.1', 'The From header must hold a valid address like "Name" <name@example.org>', [
          { name: PolicySymbol.HEADER_FROM_INVALID, evidence: { from: from.value.slice(0, 200), invalid: from.invalid } },
        ]);
      }
      const { mailboxes } = from;
      const required = facts.sender.settings.requiredFromDomains;
      const outside = mailboxes.filter((mailbox) => !domainAllowed(facts.sender, mailbox.domain));
      if (outside.length > 0) {
        return reject(550, '5.7.1', `Header From domain ${outside[0]?.domain ?? ''} is not allowed for ${facts.sender.user.identity} (${required.join(', ')})`, [
          { name: PolicySymbol.HEADER_FROM_DOMAIN_NOT_ALLOWED, evidence: { domains: outside.map((m) => m.domain), allowed: required } },
        ]);
      }
      const foreign = mailboxes.filter((mailbox) => !mayUseAddress(facts.sender, mailbox));
      if (foreign.length > 0) {
        const shown = foreign.map((m) => `${m.local}@${m.domain}`);
        return reject(550, '5.7.1', `${facts.sender.user.identity} may not send with From <${shown[0] ?? ''}>`, [
          { name: PolicySymbol.HEADER_FROM_SEND_AS_NOT_ALLOWED, evidence: { identity: facts.sender.user.identity, from: shown } },
        ]);
      }
      return pass();
    },
  };
}
