// Bearer authentication: the operator token or a tenant API key. Failed checks are counted per
// client IP; past the limit the IP gets 429 with Retry-After until old failures leave the window,
// which makes guessing keys or the operator token hopeless even though each check is fast.
// The count lives in the process (one Lambda container or the single node): a per-instance limit
// is still a hard ceiling per instance, and it needs no store round trip on every failure.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { looksLikeApiKey, verifyApiKey } from '../../core/api/api-keys.js';
import type { Clock } from '../../core/ports.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem } from './problem.js';
import type { Caller } from './route.js';

const MAX_TRACKED_IPS = 10_000;

export class FailedAuthLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly clock: Clock,
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds until `ip` may try again, or 0 when it may now. */
  retryAfter(ip: string): number {
    const recent = this.recent(ip);
    if (recent.length < this.max) return 0;
    const oldest = recent[recent.length - this.max] ?? this.clock.now();
    return Math.max(1, Math.ceil((oldest + this.windowMs - this.clock.now()) / 1000));
  }

  recordFailure(ip: string): void {
    const recent = this.recent(ip);
    recent.push(this.clock.now());
    this.failures.delete(ip);
    this.failures.set(ip, recent);
    // Oldest-first eviction keeps memory bounded when many IPs fail once.
    if (this.failures.size > MAX_TRACKED_IPS) {
      const oldest = this.failures.keys().next();
      if (!oldest.done) this.failures.delete(oldest.value);
    }
  }

  private recent(ip: string): number[] {
    const since = this.clock.now() - this.windowMs;
    const kept = (this.failures.get(ip) ?? []).filter((at) => at > since);
    if (kept.length === 0) this.failures.delete(ip);
    else this.failures.set(ip, kept);
    return kept;
  }
}

/** Constant-time comparison of a presented secret with the expected one. */
export function sameSecret(given: string, expected: string): boolean {
  // Hashing first gives equal lengths, so timingSafeEqual never reveals the token's length.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The client IP: the node server's socket, or API Gateway's request context (REST or HTTP API). */
export function defaultClientIp(c: Context): string | undefined {
  const env: unknown = c.env;
  if (typeof env !== 'object' || env === null) return undefined;
  const record = env as Record<string, unknown>;
  const incoming = record['incoming'] as { socket?: { remoteAddress?: unknown } } | undefined;
  if (typeof incoming?.socket?.remoteAddress === 'string') return incoming.socket.remoteAddress;
  const requestContext = record['requestContext'] as { identity?: { sourceIp?: unknown }; http?: { sourceIp?: unknown } } | undefined;
  const sourceIp = requestContext?.http?.sourceIp ?? requestContext?.identity?.sourceIp;
  return typeof sourceIp === 'string' ? sourceIp : undefined;
}

const challenge = { 'WWW-Authenticate': 'Bearer realm="outpost"' };

/** Who is calling; throws 401 (bad or missing token) or 429 (too many failures from this IP). */
export async function authenticate(c: Context, deps: ApiDeps, limiter: FailedAuthLimiter): Promise<Caller> {
  const header = c.req.header('authorization');
  if (!header) throw new ApiProblem(401, 'send "Authorization: Bearer <token>" with a tenant API key or the operator token', { headers: challenge });
  const ip = (deps.clientIp ?? defaultClientIp)(c) ?? 'unknown';
  const wait = limiter.retryAfter(ip);
  if (wait > 0) {
    throw new ApiProblem(429, `too many failed authentications from this address; retry after ${wait} seconds`, { headers: { 'Retry-After': String(wait) } });
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const token = match?.[1];
  if (token) {
    if (looksLikeApiKey(token)) {
      const key = await verifyApiKey(deps.apiKeys, token, deps.clock.now());
      if (key) return { role: 'tenant', key };
    } else if (deps.operatorToken && sameSecret(token, deps.operatorToken)) {
      return { role: 'operator' };
    }
  }
  limiter.recordFailure(ip);
  throw new ApiProblem(401, 'the bearer token is not valid (revoked key, wrong operator token, or malformed header)', { headers: challenge });
}
