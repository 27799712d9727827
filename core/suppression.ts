// The suppression list of a tenant: recipients that hard-bounced (added automatically, expiring)
// and manual entries (kept until removed unless given an expiry). Mail to a listed recipient is
// refused at RCPT: sending again to an address that does not exist only hurts the IP reputation.
import { pass, reject, type Check, type CheckResult } from './checks/check.js';
import type { RcptToFacts } from './checks/session.js';
import { andThen } from './maybe.js';
import type { SuppressionEntry, SuppressionList } from './ports/suppression.js';
export type { SuppressionEntry, SuppressionList, SuppressionSource } from './ports/suppression.js';

/** How long a hard bounce keeps an address suppressed: mailboxes do come back (re-created, un-full). */
export const HARD_BOUNCE_SUPPRESSION_DAYS = 30;
const DAY_MS = 86_400_000;

/** Domains are case-insensitive (RFC 5321 §2.4); local parts are kept as given. */
export function normaliseSuppressedAddress(address: string): string {
  const value = address.trim().replace(/^<|>$/g, '');
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) throw new Error(`"${address}" is not an email address (expected local@domain)`);
  return `${value.slice(0, at)}@${value.slice(at + 1).toLowerCase().replace(/\.$/, '')}`;
}

export function suppressHardBounce(
  list: SuppressionList,
  input: { tenantId: string; address: string; reason: string; now: number; days?: number },
): Promise<SuppressionEntry> {
  return list.add({
    tenantId: input.tenantId,
    address: input.address,
    source: 'bounce',
    reason: input.reason,
    expiresAt: input.now + (input.days ?? HARD_BOUNCE_SUPPRESSION_DAYS) * DAY_MS,
  });
}

export const SUPPRESSED_RECIPIENT = 'SUPPRESSED_RECIPIENT';

const formatTime = (at: number): string => `${new Date(at).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/** RCPT check: 550 5.1.1 for a recipient on the sender's tenant suppression list. */
export function suppressionCheck(list: Pick<SuppressionList, 'find'>): Check<RcptToFacts> {
  return {
    name: 'suppression',
    // At once when the list is kept in memory (core/maybe.ts).
    check: (facts) => andThen(list.find(facts.sender.tenant.id, facts.rcptTo, facts.now), (entry) => (entry ? refusal(entry, facts) : pass())),
  };
}

function refusal(entry: SuppressionEntry, facts: RcptToFacts): CheckResult {
  const why = entry.source === 'bounce' ? `hard bounce: ${entry.reason}` : `added manually${entry.reason ? `: ${entry.reason}` : ''}`;
  const until = entry.expiresAt === null ? '' : ` until ${formatTime(entry.expiresAt)}`;
  return reject(
    550,
    '5.1.1',
    `Recipient <${facts.rcptTo}> is on the suppression list of this account since ${formatTime(entry.createdAt)}${until} (${why}); ` +
      `remove it with "outpost suppression remove --tenant ${facts.sender.tenant.name} ${entry.address}" or in the control panel`,
    [{ name: SUPPRESSED_RECIPIENT, evidence: { address: entry.address, source: entry.source, since: entry.createdAt, expiresAt: entry.expiresAt } }],
  );
}
