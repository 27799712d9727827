// The per-user and per-IP policy of the ingress, as ready-made check lists (one small module per
// check, see the files next to this one), plus the bookkeeping hooks the ingress calls.
//
//   connect : dnsbl, ip-reputation
//   MAIL    : locked-sender, valid-sender, envelope-from-domain, envelope-send-as, envelope-domain-ownership
//   RCPT    : locked-sender, invalid-recipient-restriction, recipient-validity, rate-limits (keep last)
//   RCPT with an address smtp-server's parser refused: the same without rate-limits
//   DATA    : header-from, header-from-domain-ownership
//
// Counting follows SES: a message to N recipients counts N. RCPT reserves; `afterAccept` keeps
// the reservations of the accepted recipients once the message is queued; `releaseTransaction`
// gives them back when the transaction ends without a message (RSET, QUIT, refused DATA).
import type { Maybe } from '../maybe.js';
import type { CheckResult, Check, Symbol } from '../checks/check.js';
import type { ConnectFacts, DataFacts, MailFromFacts, RcptToFacts } from '../checks/session.js';
import type { Config } from '../config.js';
import type { CounterStore } from '../counters.js';
import type { OutgoingUser } from '../identity.js';
import type { LoginSourceStore } from '../login-sources.js';
import { UserLocks, type LockEvent, type LockStore } from '../locks.js';
import type { Clock, Logger, Resolver } from '../ports.js';
import { userSettings, type ConfigStore } from '../stores.js';
import { normaliseAddress } from './address.js';
import { AuthAbuse } from './auth-abuse.js';
import { dnsbl } from './dnsbl.js';
import { envelopeDomainOwnership, headerFromDomainOwnership } from './domain-ownership.js';
import { headerFrom } from './header-from.js';
import { invalidRecipientRestriction, recordInvalidRecipients } from './invalid-recipients.js';
import { counterKeys, MINUTE_MS } from './keys.js';
import { lockedSender } from './locked-sender.js';
import { rateLimits } from './rate-limits.js';
import { recipientValidity } from './recipient-validity.js';
import { addressAnswersFor, addressAnswersForUser, IpReputation, RELAY_ATTEMPT_SYMBOL } from './reputation.js';
import { envelopeFromDomain, envelopeSendAs, validSender } from './sender-rules.js';
import { PolicySymbol, RATE_LIMIT_SYMBOLS } from './symbols.js';

export { PolicySymbol } from './symbols.js';
export { recordInvalidRecipients } from './invalid-recipients.js';
export { IpReputation } from './reputation.js';
export { AuthAbuse } from './auth-abuse.js';
export { counterKeys } from './keys.js';

export interface IngressPolicyDeps {
  counters: CounterStore;
  locks: UserLocks;
  resolver: Resolver;
  clock: Clock;
  config: Config;
  logger: Logger;
  configStore: ConfigStore;
  /** Where each login has succeeded from (the smart lockout of failed AUTH). */
  loginSources: LoginSourceStore;
}

/** Refusals that say something bad about the client's address (not limits, locks or DNS trouble). */
const REPUTATION_REFUSALS: ReadonlySet<string> = new Set([
  PolicySymbol.SENDER_NULL_NOT_ALLOWED,
  PolicySymbol.SENDER_SYNTAX_INVALID,
  PolicySymbol.SENDER_DOMAIN_UNRESOLVABLE,
  PolicySymbol.SENDER_DOMAIN_NOT_ALLOWED,
  PolicySymbol.SEND_AS_NOT_ALLOWED,
  PolicySymbol.SENDER_UNCHECKABLE,
  PolicySymbol.SENDER_DOMAIN_OF_OTHER_TENANT,
  PolicySymbol.HEADER_FROM_DOMAIN_OF_OTHER_TENANT,
  PolicySymbol.HEADER_FROM_COUNT,
  PolicySymbol.HEADER_FROM_INVALID,
  PolicySymbol.HEADER_FROM_DOMAIN_NOT_ALLOWED,
  PolicySymbol.HEADER_FROM_SEND_AS_NOT_ALLOWED,
  PolicySymbol.RECIPIENT_SYNTAX_INVALID,
  PolicySymbol.RECIPIENT_DOMAIN_UNRESOLVABLE,
  PolicySymbol.INVALID_RECIPIENT_LIMIT,
  RELAY_ATTEMPT_SYMBOL,
]);

export interface IngressPolicy {
  /** Failed AUTH attempts allowed on one connection before 421 4.7.0 and disconnect (config). */
  maxAuthFailuresPerConnection: number;
  connect: Check<ConnectFacts>[];
  mailFrom: Check<MailFromFacts>[];
  rcptTo: Check<RcptToFacts>[];
  malformedRcptTo: Check<RcptToFacts>[];
  data: Check<DataFacts>[];
  /** Commits the counters of an accepted (queued) message: its recipients count. */
  afterAccept(facts: DataFacts): Maybe<void>;
  /** Gives back what RCPT reserved in this session's open transaction. */
  releaseTransaction(facts: ConnectFacts, rcpts?: string[]): Maybe<void>;
  /** Bookkeeping for every refusal: IP reputation and the lock after repeated limit violations. */
  onRefusal(facts: ConnectFacts & Partial<MailFromFacts>, result: CheckResult): Promise<void>;
  onAuthFailure(ip: string, username: string): Promise<void>;
  onAuthSuccess(ip: string, username: string): Promise<void>;
  /** 421 4.7.0 while the IP or username is blocked after too many failures; ask before answering AUTH. */
  isAuthBlocked(ip: string, username: string): Promise<CheckResult | undefined>;
  /**
   * An abuse verdict on mail from `ip` by `user`: locks (autoLock), and raises the IP's score only
   * when `user` is an IP user (an authenticated user answers for its own mail). A
   * spam verdict locks once `policy.spamVerdicts.lockAfter` of them fall within its window; a
   * virus verdict (or one of no stated kind) locks at once.
   */
  recordAbuse(ip: string, user: OutgoingUser | string, reasons: Symbol[], kind?: 'spam' | 'virus'): Promise<void>;
  /** Hard bounces reported by delivery count as invalid recipients. */
  recordHardBounces(user: OutgoingUser | string, count: number, evidence: Record<string, unknown>): Promise<void>;
  reputation: IpReputation;
}

export function makeIngressPolicy(deps: IngressPolicyDeps): IngressPolicy {
  const { counters, locks, resolver, clock, config, logger, configStore, loginSources } = deps;
  const policy = config.policy;
  const reputation = new IpReputation(counters, clock, policy.reputation);
  const authAbuse = new AuthAbuse({ counters, locks, configStore, clock, reputation, loginSources, settings: policy.authFailure, logger });

  const resolveUser = async (user: OutgoingUser | string) => (typeof user === 'string' ? configStore.getUser(user) : user);
  const settingsOf = (user: OutgoingUser) => userSettings(configStore, user, config.defaults);

  const countViolation = async (facts: Partial<MailFromFacts>, result: CheckResult): Promise<void> => {
    const { lockAfter, windowMinutes } = policy.limitViolations;
    if (!facts.sender || lockAfter === 0) return;
    const total = await counters.add(counterKeys.limitViolations(facts.sender.user.id), 1, windowMinutes * MINUTE_MS);
    if (total < lockAfter) return;
    const limits = result.symbols.filter((symbol) => RATE_LIMIT_SYMBOLS.has(symbol.name)).map((symbol) => symbol.name);
    await locks.lockAfterAbuse(facts.sender.user, [{ name: PolicySymbol.LIMIT_VIOLATIONS, evidence: { refusals: total, windowMinutes, limits } }], facts.sender.settings);
  };

  // Also run for an address smtp-server's parser refused: it counts as an invalid recipient.
  const recipientChecks = [lockedSender<RcptToFacts>(locks), invalidRecipientRestriction(counters), recipientValidity({ counters, locks, resolver })];

  return {
    maxAuthFailuresPerConnection: policy.authFailure.perConnection,
    connect: [dnsbl(resolver, policy, logger), reputation.check()],
    mailFrom: [lockedSender(locks), validSender(resolver), envelopeFromDomain(), envelopeSendAs(), envelopeDomainOwnership(configStore)],
    rcptTo: [...recipientChecks, rateLimits(counters)],
    malformedRcptTo: recipientChecks,
    data: [headerFrom(), headerFromDomainOwnership(configStore)],
    afterAccept: (facts) => counters.settle(facts.sessionId, facts.rcptTo.map(normaliseAddress)),
    releaseTransaction: (facts) => counters.settle(facts.sessionId, []),
    async onRefusal(facts, result) {
      const names = result.symbols.map((symbol) => symbol.name);
      if (names.some((name) => RATE_LIMIT_SYMBOLS.has(name))) await countViolation(facts, result);
      // An authenticated user's refusals are its own (limits, invalid recipients, locks), not its address's.
      if (addressAnswersFor(facts.sender) && names.some((name) => REPUTATION_REFUSALS.has(name))) await reputation.record(facts.clientIp, 'refusal');
    },
    onAuthFailure: (ip, username) => authAbuse.onAuthFailure(ip, username),
    onAuthSuccess: (ip, username) => authAbuse.onAuthSuccess(ip, username),
    isAuthBlocked: (ip, username) => authAbuse.isAuthBlocked(ip, username),
    async recordAbuse(ip, user, reasons, kind) {
      if (addressAnswersForUser(await resolveUser(user))) await reputation.record(ip, 'abuse');
      if (kind !== 'spam') {
        await locks.lockAfterAbuse(user, reasons);
        return;
      }
      // One spam verdict can be a false positive or a forwarded message; a series is a pattern.
      const userId = typeof user === 'string' ? user : user.id;
      const { lockAfter, windowMinutes } = policy.spamVerdicts;
      const verdicts = await counters.add(counterKeys.spamVerdicts(userId), 1, windowMinutes * MINUTE_MS);
      if (verdicts < lockAfter) return;
      await locks.lockAfterAbuse(user, [{ name: PolicySymbol.SPAM_VERDICTS, evidence: { verdicts, lockAfter, windowMinutes } }, ...reasons]);
    },
    async recordHardBounces(user, count, evidence) {
      const found = await resolveUser(user);
      if (!found) return;
      await recordInvalidRecipients({ counters, locks }, found, await settingsOf(found), count, { ...evidence, why: 'hard-bounce' });
    },
    reputation,
  };
}

export interface UserLocksWiring {
  store: LockStore;
  counters: CounterStore;
  clock: Clock;
  configStore: ConfigStore;
  config: Config;
  logger?: Logger;
  onLockEvent?: (event: LockEvent) => void;
  /** Called after a manual unlock has forgotten the counters: releases the user's held mail. */
  afterUnlock?: (userId: string) => Promise<void>;
}

/**
 * The UserLocks everyone shares (ingress, pipeline, CLI, API). A manual unlock also forgets the
 * counters that caused the lock: invalid recipients, limit violations, spam verdicts, and the user's AUTH
 * failures and block; rate-limit usage is not reset (the limits still hold).
 */
export function makeUserLocks(wiring: UserLocksWiring): UserLocks {
  const { counters, configStore } = wiring;
  return new UserLocks({
    store: wiring.store,
    clock: wiring.clock,
    configStore,
    defaults: wiring.config.defaults,
    logger: wiring.logger,
    onLockEvent: wiring.onLockEvent,
    onUnlock: async (userId) => {
      await counters.reset(counterKeys.invalidRecipients(userId));
      await counters.reset(counterKeys.limitViolations(userId));
      await counters.reset(counterKeys.spamVerdicts(userId));
      const user = await configStore.getUser(userId);
      if (user && user.kind !== 'ip') {
        await counters.reset(counterKeys.authFailuresUser(user.identity));
        await counters.reset(counterKeys.authBlockUser(user.identity));
      }
      await wiring.afterUnlock?.(userId);
    },
  });
}
