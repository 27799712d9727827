// The Resolver port on node:dns. OUTPOST_DNS_SERVERS names the servers ("host:port", "[v6]:port");
// without them the system's resolv.conf servers are used. Errors keep node's codes (ENOTFOUND =
// NXDOMAIN, ENODATA = no records of the type, ETIMEOUT, ESERVFAIL...), which routing relies on.
import { Resolver as DnsResolver } from 'node:dns/promises';
import { rejected, type Maybe } from '../../core/maybe.js';
import type { Resolver } from '../../core/ports.js';

export interface ResolverOptions {
  servers: string[];
  timeoutMs: number;
  /**
   * Keep answers this many seconds at most (0: no cache). A and AAAA answers are kept for their
   * TTL up to this; node:dns does not report the TTL of MX and TXT answers, nor of NXDOMAIN and
   * "no records" answers, so those are kept for this long. Failures (timeouts, SERVFAIL) are
   * never kept. Concurrent lookups of one name share one query.
   */
  cacheSeconds?: number;
}

/** Most answers a cache holds; the oldest go first. */
const CACHE_ENTRIES = 10_000;

export function createResolver(config: ResolverOptions): Resolver {
  // tries: 2 so that one lost UDP packet is not yet a temporary delivery failure.
  const dns = new DnsResolver({ timeout: config.timeoutMs, tries: 2 });
  if (config.servers.length > 0) dns.setServers(config.servers);
  const maxMs = (config.cacheSeconds ?? 0) * 1000;
  if (maxMs <= 0) {
    return {
      resolveMx: (domain) => dns.resolveMx(domain),
      resolve4: (name) => dns.resolve4(name),
      resolve6: (name) => dns.resolve6(name),
      resolveTxt: (name) => dns.resolveTxt(name),
    };
  }
  const cache = new AnswerCache(maxMs);
  const withTtl = (records: Array<{ address: string; ttl: number }>) => ({ value: records.map((record) => record.address), ttlMs: Math.min(...records.map((record) => record.ttl * 1000)) });
  return {
    resolveMx: (domain) => cache.lookup(`MX ${domain}`, async () => ({ value: await dns.resolveMx(domain) })),
    resolve4: (name) => cache.lookup(`A ${name}`, async () => withTtl(await dns.resolve4(name, { ttl: true }))),
    resolve6: (name) => cache.lookup(`AAAA ${name}`, async () => withTtl(await dns.resolve6(name, { ttl: true }))),
    resolveTxt: (name) => cache.lookup(`TXT ${name}`, async () => ({ value: await dns.resolveTxt(name) })),
  };
}

/** A kept failure is kept as the one rejected promise every caller gets (see core/maybe.ts `rejected`). */
type Answer = { ok: true; value: unknown } | { ok: false; rejection: Promise<never> };

/**
 * A deep copy of a DNS answer: arrays of strings (A, AAAA), of { exchange, priority } (MX) or of
 * string arrays (TXT). Asked on every MAIL FROM and RCPT, so not structuredClone, which
 * serialises and parses the value (several times the cost for answers this small).
 */
function copyAnswer<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyAnswer) as T;
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) copy[key] = copyAnswer(field);
    return copy as T;
  }
  return value;
}

/** NXDOMAIN and "no records of this type" are answers, and are kept; other errors are not. */
function isNegativeAnswer(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

class AnswerCache {
  private readonly answers = new Map<string, { answer: Answer; expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(private readonly maxMs: number) {}

  /** A kept answer at once (core/maybe.ts), a negative one as a rejected promise; else the query's promise. */
  lookup<T>(key: string, query: () => Promise<{ value: T; ttlMs?: number }>): Maybe<T> {
    const kept = this.answers.get(key);
    if (kept && kept.expiresAt > Date.now()) {
      // Answers are shared between callers: hand out copies so no caller can change the cache.
      return kept.answer.ok ? (copyAnswer(kept.answer.value) as T) : (kept.answer.rejection as Promise<T>);
    }
    if (kept) this.answers.delete(key);
    const running = this.inFlight.get(key);
    if (running) return running.then((value) => copyAnswer(value) as T);
    const started = query().then(
      ({ value, ttlMs }) => {
        this.keep(key, { ok: true, value }, Math.min(this.maxMs, ttlMs ?? this.maxMs));
        return value;
      },
      (error: unknown) => {
        if (isNegativeAnswer(error)) this.keep(key, { ok: false, rejection: rejected(error) }, this.maxMs);
        throw error;
      },
    );
    this.inFlight.set(key, started);
    const settled = () => this.inFlight.delete(key);
    started.then(settled, settled);
    return started.then((value) => copyAnswer(value));
  }

  private keep(key: string, answer: Answer, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.answers.set(key, { answer, expiresAt: Date.now() + ttlMs });
    while (this.answers.size > CACHE_ENTRIES) {
      const oldest = this.answers.keys().next().value;
      if (oldest === undefined) break;
      this.answers.delete(oldest);
    }
  }
}
