// MAIL FROM (and RCPT TO, to stop a transaction that a parallel session just got locked):
// a locked identity is refused, naming the lock and, if temporary, when it ends.
import { reject, pass, type Check, type CheckResult } from '../checks/check.js';
import type { MailFromFacts } from '../checks/session.js';
import type { LockState, UserLocks } from '../locks.js';
import { andThen } from '../maybe.js';
import { formatUtc } from './address.js';
import { PolicySymbol } from './symbols.js';

export function lockedSender<F extends MailFromFacts>(locks: UserLocks): Check<F> {
  return {
    name: 'locked-sender',
    // At once when the lock is read from memory (core/maybe.ts).
    check: (facts) => andThen(locks.activeLock(facts.sender.user.id), (lock) => (lock ? refusal(lock, facts) : pass())),
  };
}

function refusal(lock: LockState, facts: MailFromFacts): CheckResult {
  const why = lock.reasons.map((reason) => reason.name).join(', ') || 'abuse';
  const symbol = {
    name: PolicySymbol.USER_LOCKED,
    evidence: { identity: lock.identity, permanent: lock.permanent, until: lock.until, reasons: lock.reasons, lockedAt: lock.lockedAt },
  };
  const text =
    lock.permanent || lock.until === null
      ? `${lock.identity} is locked (${why}) until your provider unlocks it; contact them`
      : `${lock.identity} is locked (${why}) until ${formatUtc(lock.until, facts.now)}; try again after that`;
  return reject(550, '5.7.1', text, [symbol]);
}
