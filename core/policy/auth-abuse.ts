// Failed AUTH across connections, as a "smart lockout". Failures are counted per source IP and
// per login within policy.authFailure.windowMinutes. Reaching perIp blocks AUTH from that IP for
// blockMinutes. Reaching perUser blocks AUTH as that login for blockMinutes, but only from
// sources (an IPv4 address, an IPv6 /64) that have not logged in successfully as that login
// within familiarSourceDays: whoever knows a username can hammer it from anywhere without
// locking its owner out of the places the owner logs in from. While blocked, even a correct
// password is refused with 421 4.7.0 and the connection is closed: 421 (not 535) so that a
// legitimate client says "try later" instead of "wrong password", and a guesser loses its
// connection. Logins are counted under canonicalLogin, the name the login itself is looked up by.
// A successful login does not forget the login's failures: the owner's mail client logs in every
// few minutes, and each reset would hand strangers a fresh allowance of guesses.
// With authFailure.lockUser (off by default) reaching perUser also locks the user
// (lockAfterAbuse, AUTH_BRUTE_FORCE, subject to its autoLock), which lets strangers lock users.
// The per-connection limit (perConnection failures, then 421) is enforced by the ingress.
import { tempfail, type CheckResult } from '../checks/check.js';
import type { Config } from '../config.js';
import type { CounterStore } from '../counters.js';
import { canonicalLogin, parseIdentity } from '../identity.js';
import { loginSource, type LoginSourceStore } from '../login-sources.js';
import type { UserLocks } from '../locks.js';
import type { Clock, Logger } from '../ports.js';
import type { ConfigStore } from '../stores.js';
import { formatUtc } from './address.js';
import { counterKeys, DAY_MS, MINUTE_MS } from './keys.js';
import type { IpReputation } from './reputation.js';
import { PolicySymbol } from './symbols.js';

export interface AuthAbuseDeps {
  counters: CounterStore;
  locks: UserLocks;
  configStore: ConfigStore;
  clock: Clock;
  reputation: IpReputation;
  /** Where each login has succeeded from (sources that stay welcome while the login is blocked). */
  loginSources: LoginSourceStore;
  settings: Config['policy']['authFailure'];
  logger?: Logger;
}

export class AuthAbuse {
  constructor(private readonly deps: AuthAbuseDeps) {}

  private get windowMs(): number {
    return this.deps.settings.windowMinutes * MINUTE_MS;
  }

  private get blockMs(): number {
    return this.deps.settings.blockMinutes * MINUTE_MS;
  }

  async onAuthFailure(ip: string, username: string): Promise<void> {
    const { counters, settings } = this.deps;
    const user = canonicalLogin(username);
    await this.deps.reputation.record(ip, 'authFailure');
    const ipFailures = await counters.add(counterKeys.authFailuresIp(ip), 1, this.windowMs);
    if (ipFailures >= settings.perIp && !(await this.blockedSince(counterKeys.authBlockIp(ip)))) {
      await counters.add(counterKeys.authBlockIp(ip), 1, this.blockMs);
      this.deps.logger?.warn('AUTH blocked for source IP', { ip, failures: ipFailures, blockMinutes: settings.blockMinutes });
    }
    if (user === '') return;
    const userFailures = await counters.add(counterKeys.authFailuresUser(user), 1, this.windowMs);
    if (userFailures >= settings.perUser && !(await this.blockedSince(counterKeys.authBlockUser(user)))) {
      await counters.add(counterKeys.authBlockUser(user), 1, this.blockMs);
      this.deps.logger?.warn('AUTH blocked for username', { username: user, failures: userFailures, blockMinutes: settings.blockMinutes });
      if (settings.lockUser) await this.lockUser(user, ip, userFailures);
    }
  }

  /** Remembers the source as familiar to this login for familiarSourceDays. */
  async onAuthSuccess(ip: string, username: string): Promise<void> {
    const login = canonicalLogin(username);
    if (login === '') return;
    await this.deps.loginSources.remember(login, loginSource(ip), this.deps.clock.now(), this.deps.settings.familiarSourceDays * DAY_MS);
  }

  /** The refusal for a blocked IP or username, or undefined. Ask before (or regardless of) the password check. */
  async isAuthBlocked(ip: string, username: string): Promise<CheckResult | undefined> {
    const now = this.deps.clock.now();
    const ipSince = await this.blockedSince(counterKeys.authBlockIp(ip));
    if (ipSince !== undefined) {
      const until = ipSince + this.blockMs;
      return tempfail(421, '4.7.0', `Too many failed logins from ${ip}; try again after ${formatUtc(until, now)}`, [
        { name: PolicySymbol.AUTH_BLOCKED_IP, evidence: { ip, until } },
      ]);
    }
    const user = canonicalLogin(username);
    const userSince = user === '' ? undefined : await this.blockedSince(counterKeys.authBlockUser(user));
    if (userSince !== undefined) {
      const source = loginSource(ip);
      // The owner's own places keep working: the block is aimed at strangers.
      if (await this.deps.loginSources.isFamiliar(user, source, now)) return undefined;
      const until = userSince + this.blockMs;
      return tempfail(421, '4.7.0', `Too many failed logins for this account; try again after ${formatUtc(until, now)}`, [
        { name: PolicySymbol.AUTH_BLOCKED_USER, evidence: { username: user, source, until } },
      ]);
    }
    return undefined;
  }

  /** Forgets the failures and block of a username (manual unlock). */
  async forgetUser(username: string): Promise<void> {
    const user = canonicalLogin(username);
    await this.deps.counters.reset(counterKeys.authFailuresUser(user));
    await this.deps.counters.reset(counterKeys.authBlockUser(user));
  }

  private async blockedSince(key: string): Promise<number | undefined> {
    // The block counts from its latest second (a whole second: blocks end on a whole second).
    const buckets = await this.deps.counters.buckets(key, this.blockMs);
    return buckets[buckets.length - 1]?.at;
  }

  private async lockUser(username: string, ip: string, failures: number): Promise<void> {
    let identity: string;
    try {
      const parsed = parseIdentity(username);
      if (parsed.kind === 'ip') return;
      identity = parsed.identity;
    } catch {
      return; // not a login name any user could have
    }
    const user = await this.deps.configStore.findUserByLogin(identity);
    if (!user) return;
    await this.deps.locks.lockAfterAbuse(user, [
      { name: PolicySymbol.AUTH_BRUTE_FORCE, evidence: { failures, windowMinutes: this.deps.settings.windowMinutes, lastIp: ip } },
    ]);
  }
}
