// Internal reputation of a source IP: a score built from that IP's failed AUTH attempts, policy
// refusals and abuse verdicts, each weighted (config policy.reputation) and decaying by half every
// halfLifeMinutes. Events older than ten half-lives (under 0.1% of their weight) are dropped.
// At connect, a score at or above rejectScore is refused (554 5.7.1), at or above throttleScore
// told to come back later (421 4.7.0).
//
// Only what speaks about the address is charged to it: failed AUTH, unauthenticated relay
// attempts and other refusals of sessions without a logged-in user, and the verdicts on mail of
// IP users (whose identity is the address). An authenticated user answers for its own refusals
// and verdicts (its counters and locks): an office behind NAT or a webmail host is one address,
// and one user's virus must not lock out everyone else who sends from it.
import { pass, reject, tempfail, type Check } from '../checks/check.js';
import type { ConnectFacts } from '../checks/session.js';
import type { Config } from '../config.js';
import type { CounterStore } from '../counters.js';
import type { Clock } from '../ports.js';
import { counterKeys, MINUTE_MS } from './keys.js';
import { PolicySymbol } from './symbols.js';

export type ReputationEvent = 'authFailure' | 'refusal' | 'abuse';

/** The refusal of a MAIL FROM by a client that neither logged in nor sends from an IP user's address. */
export const RELAY_ATTEMPT_SYMBOL = 'NOT_AUTHORISED_TO_RELAY';

/** Whether a session's refusals and verdicts count against its source address (see above). */
export function addressAnswersFor(sender: { via: 'auth' | 'ip' } | undefined): boolean {
  return sender === undefined || sender.via === 'ip';
}

/** Whether verdicts on a user's mail count against the address it came from: only an IP user's. */
export function addressAnswersForUser(user: { kind: string } | undefined): boolean {
  return user?.kind === 'ip';
}

// Stored as integers (hundredths of a point): the counter store counts whole units.
const SCALE = 100;

export class IpReputation {
  constructor(
    private readonly counters: CounterStore,
    private readonly clock: Clock,
    private readonly settings: Config['policy']['reputation'],
  ) {}

  private get halfLifeMs(): number {
    return this.settings.halfLifeMinutes * MINUTE_MS;
  }

  async record(ip: string, event: ReputationEvent, times = 1): Promise<void> {
    const weight = { authFailure: this.settings.authFailureWeight, refusal: this.settings.refusalWeight, abuse: this.settings.abuseWeight }[event];
    const units = Math.round(weight * times * SCALE);
    if (units <= 0 || ip === '') return;
    await this.counters.add(counterKeys.reputation(ip), units, 10 * this.halfLifeMs);
  }

  async score(ip: string): Promise<number> {
    const now = this.clock.now();
    // One bucket per second with events: the decay is applied per second, not per event.
    const buckets = await this.counters.buckets(counterKeys.reputation(ip), 10 * this.halfLifeMs);
    const score = buckets.reduce((sum, bucket) => sum + (bucket.units / SCALE) * 0.5 ** (Math.max(0, now - bucket.at) / this.halfLifeMs), 0);
    return Math.round(score * 100) / 100;
  }

  /** Connect check: throttle or refuse an IP with a bad score. */
  check(): Check<ConnectFacts> {
    return {
      name: 'ip-reputation',
      check: async (facts) => {
        const score = await this.score(facts.clientIp);
        const evidence = { ip: facts.clientIp, score, throttleScore: this.settings.throttleScore, rejectScore: this.settings.rejectScore };
        if (score >= this.settings.rejectScore) {
          return reject(554, '5.7.1', `Connections from ${facts.clientIp} are refused: too many failed logins or refused mails from this address`, [
            { name: PolicySymbol.IP_REPUTATION_BAD, score, evidence },
          ]);
        }
        if (score >= this.settings.throttleScore) {
          return tempfail(421, '4.7.0', `Too many failed logins or refused mails from ${facts.clientIp}; try again later`, [
            { name: PolicySymbol.IP_REPUTATION_BAD, score, evidence },
          ]);
        }
        return pass();
      },
    };
  }
}
