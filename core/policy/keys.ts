// Counter keys, in one place: the checks write them, a manual unlock resets some of them.
export const counterKeys = {
  rateMinuteUser: (userId: string) => `rate:minute:user:${userId}`,
  rateHourUser: (userId: string) => `rate:hour:user:${userId}`,
  rateMinuteIp: (ip: string) => `rate:minute:ip:${ip}`,
  rateHourIp: (ip: string) => `rate:hour:ip:${ip}`,
  distinctRecipients: (userId: string) => `rcpt:day:user:${userId}`,
  invalidRecipients: (userId: string) => `invalid:user:${userId}`,
  limitViolations: (userId: string) => `violations:user:${userId}`,
  spamVerdicts: (userId: string) => `spam:user:${userId}`,
  authFailuresIp: (ip: string) => `authfail:ip:${ip}`,
  authFailuresUser: (username: string) => `authfail:user:${username}`,
  authBlockIp: (ip: string) => `authblock:ip:${ip}`,
  authBlockUser: (username: string) => `authblock:user:${username}`,
  reputation: (ip: string) => `reputation:ip:${ip}`,
};

/**
 * The keys of the rate limits at RCPT (mails per minute and per hour, distinct recipients per day):
 * only the ingress's rate-limit check reserves and settles them, and nothing else reads or resets
 * them, so the single node's relay thread keeps them in memory (adapters/local/relay-counters.ts).
 */
export const RATE_LIMIT_KEY_PREFIXES = ['rate:', 'rcpt:day:'];

/**
 * The keys read for every new session: an address's reputation at connect and the blocks after
 * failed logins at AUTH. The single node's relay thread keeps their buckets in memory until any
 * connection changes them (adapters/local/counter-reads.ts; the triggers of migration 13 name
 * these same prefixes).
 */
export const SESSION_START_KEY_PREFIXES = ['reputation:', 'authblock:'];

/** Whether `key` starts with one of `prefixes` (RATE_LIMIT_KEY_PREFIXES, SESSION_START_KEY_PREFIXES). */
export function hasKeyPrefix(key: string, prefixes: readonly string[]): boolean {
  return prefixes.some((prefix) => key.startsWith(prefix));
}

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
