// RCPT: mails per minute, mails per hour (per identity; for IP users also per source address)
// and distinct recipients per rolling 24 hours. A message to N recipients counts N, as SES counts,
// so the decision is made per recipient, at RCPT, while the client can still be told "try later".
//
// Counting: each RCPT reserves its units atomically in the CounterStore, held by the session.
// When the message is accepted, `afterAccept` keeps the reservations of the accepted recipients;
// when the transaction ends without a message (RSET, QUIT, refused DATA) `releaseTransaction`
// gives them back. Reservations count from the moment they are made, so parallel sessions of one
// user can never exceed a limit together. Keep this check last in the RCPT list: a recipient a
// later check refused would stay reserved until the transaction ends.
import { pass, tempfail, type Check, type CheckResult } from '../checks/check.js';
import type { RcptToFacts } from '../checks/session.js';
import type { CounterStore, DistinctLimit, Refusal, WindowLimit } from '../counters.js';
import { andThen } from '../maybe.js';
import { formatUtc, normaliseAddress } from './address.js';
import { counterKeys, DAY_MS, HOUR_MS, MINUTE_MS } from './keys.js';
import { PolicySymbol } from './symbols.js';

export function rateLimits(counters: CounterStore): Check<RcptToFacts> {
  return {
    name: 'rate-limits',
    // At once when the store holds the counters in memory, as the single node's relay does (core/maybe.ts).
    check(facts) {
      const { settings, user, via } = facts.sender;
      const limits: WindowLimit[] = [];
      if (settings.mailsPerMinute > 0) {
        limits.push({ key: counterKeys.rateMinuteUser(user.id), units: 1, limit: settings.mailsPerMinute, windowMs: MINUTE_MS });
        if (via === 'ip') limits.push({ key: counterKeys.rateMinuteIp(facts.clientIp), units: 1, limit: settings.mailsPerMinute, windowMs: MINUTE_MS });
      }
      if (settings.mailsPerHour > 0) {
        limits.push({ key: counterKeys.rateHourUser(user.id), units: 1, limit: settings.mailsPerHour, windowMs: HOUR_MS });
        if (via === 'ip') limits.push({ key: counterKeys.rateHourIp(facts.clientIp), units: 1, limit: settings.mailsPerHour, windowMs: HOUR_MS });
      }
      const recipient = normaliseAddress(facts.rcptTo);
      const distinct: DistinctLimit[] =
        settings.maxRecipientsPerDay > 0
          ? [{ key: counterKeys.distinctRecipients(user.id), members: [recipient], limit: settings.maxRecipientsPerDay, windowMs: DAY_MS }]
          : [];
      if (limits.length === 0 && distinct.length === 0) return pass();
      return andThen(counters.reserve({ limits, distinct, hold: { transaction: facts.sessionId, item: recipient } }), (outcome) => (outcome.ok ? pass() : refusal(outcome.refused, facts)));
    },
  };
}

function refusal(refused: Refusal, facts: RcptToFacts): CheckResult {
  const retry = formatUtc(refused.retryAt, facts.now);
  const perIp = refused.key.includes(':ip:') ? ` from ${facts.clientIp}` : '';
  const evidence = { key: refused.key, limit: refused.limit, used: refused.used, retryAt: refused.retryAt, identity: facts.sender.user.identity };
  if (refused.key.startsWith('rate:minute:')) {
    return tempfail(450, '4.7.1', `Limit of ${refused.limit} mails per minute${perIp} reached; retry after ${retry}`, [
      { name: PolicySymbol.RATE_LIMIT_MINUTE, evidence },
    ]);
  }
  if (refused.key.startsWith('rate:hour:')) {
    return tempfail(451, '4.7.1', `Hourly limit of ${refused.limit} mails${perIp} reached; retry after ${retry}`, [
      { name: PolicySymbol.RATE_LIMIT_HOUR, evidence },
    ]);
  }
  return tempfail(450, '4.7.1', `Daily limit of ${refused.limit} distinct recipients reached; retry after ${retry}`, [
    { name: PolicySymbol.RECIPIENTS_PER_DAY, evidence },
  ]);
}
