// Invalid Recipient Limit: bad addresses (syntax, domain without MX/A, hard bounces reported by
// delivery) per rolling 24 hours. Reaching the limit restricts the identity: with autoLock it is
// locked (lockAfterAbuse); without, every RCPT is refused (550 5.7.1) until enough of the counted
// addresses are older than 24 hours.
import { pass, reject, type Check, type CheckResult, type Symbol } from '../checks/check.js';
import type { RcptToFacts } from '../checks/session.js';
import { retryTime, type CounterStore } from '../counters.js';
import type { OutgoingUser } from '../identity.js';
import type { UserLocks } from '../locks.js';
import type { UserSettings } from '../settings.js';
import { formatUtc } from './address.js';
import { counterKeys, DAY_MS } from './keys.js';
import { PolicySymbol } from './symbols.js';

export interface InvalidRecipientDeps {
  counters: CounterStore;
  locks: UserLocks;
}

/**
 * Counts `count` invalid recipients for the user; when the total reaches invalidRecipientLimit,
 * locks the user (if autoLock). Returns the symbol to add to the refusal when the limit is reached.
 * Delivery calls this for hard bounces.
 */
export async function recordInvalidRecipients(
  deps: InvalidRecipientDeps,
  user: OutgoingUser,
  settings: UserSettings,
  count: number,
  evidence: Record<string, unknown>,
): Promise<Symbol | undefined> {
  const total = await deps.counters.add(counterKeys.invalidRecipients(user.id), count, DAY_MS);
  const limit = settings.invalidRecipientLimit;
  if (limit === 0 || total < limit) return undefined;
  const symbol: Symbol = { name: PolicySymbol.INVALID_RECIPIENT_LIMIT, evidence: { ...evidence, invalidIn24h: total, limit } };
  if (settings.autoLock) await deps.locks.lockAfterAbuse(user, [symbol], settings);
  return symbol;
}

/** RCPT: refuses every recipient while the limit is reached and autoLock is off (with autoLock, the lock refuses). */
export function invalidRecipientRestriction(counters: CounterStore): Check<RcptToFacts> {
  return {
    name: 'invalid-recipient-restriction',
    check(facts) {
      const { settings, user } = facts.sender;
      const limit = settings.invalidRecipientLimit;
      // At once when the limit locks instead of restricting (the default) or is off.
      if (limit === 0 || settings.autoLock) return pass();
      return restriction(counters, facts, limit);
    },
  };
}

async function restriction(counters: CounterStore, facts: RcptToFacts, limit: number): Promise<CheckResult> {
  const { user } = facts.sender;
  const key = counterKeys.invalidRecipients(user.id);
  const total = await counters.total(key, DAY_MS);
  if (total < limit) return pass();
  // Lifted once the total drops below the limit, i.e. fits under limit - 1.
  const until = retryTime(await counters.buckets(key, DAY_MS), total, limit - 1, 0, DAY_MS, facts.now);
  return reject(
    550,
    '5.7.1',
    `${user.identity} tried ${total} invalid recipients in 24 hours (limit ${limit}); sending is restricted until ${formatUtc(until, facts.now)}`,
    [{ name: PolicySymbol.INVALID_RECIPIENT_LIMIT, evidence: { invalidIn24h: total, limit, until } }],
  );
}
