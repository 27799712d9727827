// Finding the IP user of a client address without reading every IP user: each IP user's range is
// filed under a bucket — the /16 (IPv4) or /32 (IPv6) network its address lies in, the widest
// range an IP user may have (WIDEST_IP_USER_PREFIX) — and a client address is looked up in its
// own bucket plus the "wide" bucket of its family (ranges wider than that, should any exist from
// before the limit). The config store keeps the bucket with the user (an indexed column on
// SQLite, an item of its own on DynamoDB); the most specific range in the two buckets wins.
//
// The ingress asks on every MAIL FROM without AUTH, so a found IP user is cached briefly: one
// changed or removed takes effect within IP_USER_CACHE_MS; one added takes effect at once
// ("no IP user" is not cached: the lookup is two keyed reads, and a new smarthost must work).
import { attempt } from './maybe.js';
import { ipv6Groups } from './ip-address.js';
import { isIP } from 'node:net';
import { normaliseCidr, WIDEST_IP_USER_PREFIX, type OutgoingUser } from './identity.js';
import type { ConfigStore } from './ports/config-store.js';

export const IP_USER_CACHE_MS = 5_000;
const IP_USER_CACHE_ENTRIES = 10_000;

function bucketOfAddress(address: string): string {
  if (isIP(address) === 4) return `4:${address.split('.').slice(0, 2).map(Number).join('.')}`;
  const groups = ipv6Groups(address.toLowerCase());
  return `6:${groups.slice(0, 2).map((group) => group.toString(16)).join(':')}`;
}

/** The bucket an IP user's range is filed under (`range` as `parseIdentity` normalised it). */
export function ipRangeBucket(range: string): string {
  const { address, prefix, family } = normaliseCidr(range);
  if (prefix < WIDEST_IP_USER_PREFIX[family]) return family === 'ipv4' ? '4:wide' : '6:wide';
  return bucketOfAddress(address);
}

/** The buckets that may hold a range containing the client address `ip` (none for a non-address). */
export function ipAddressBuckets(ip: string): string[] {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const address = mapped?.[1] ?? ip;
  const version = isIP(address);
  if (version === 0) return [];
  return [bucketOfAddress(address), version === 4 ? '4:wide' : '6:wide'];
}

/**
 * `configStore.findIpUser` behind a small cache of found users (per process, IP_USER_CACHE_MS,
 * at most IP_USER_CACHE_ENTRIES addresses, the oldest dropped first).
 */
export function cachedIpUserLookup(
  configStore: Pick<ConfigStore, 'findIpUser'>,
  // The cache's age is operational time (monotonic), not the business clock tests may freeze.
  options: { now?: () => number; ttlMs?: number } = {},
): (ip: string) => Promise<OutgoingUser | undefined> {
  const ttlMs = options.ttlMs ?? IP_USER_CACHE_MS;
  const clock = { now: options.now ?? (() => performance.now()) };
  const cache = new Map<string, { at: number; user: Promise<OutgoingUser | undefined> }>();
  return (ip) => {
    const now = clock.now();
    const hit = cache.get(ip);
    if (hit && now - hit.at < ttlMs && now >= hit.at) return hit.user;
    const user = Promise.resolve(attempt(() => configStore.findIpUser(ip)));
    // Neither a failed lookup nor "none" is remembered: the next MAIL FROM asks the store again.
    user.then(
      (found) => {
        if (!found && cache.get(ip)?.user === user) cache.delete(ip);
      },
      () => cache.delete(ip),
    );
    cache.delete(ip);
    if (cache.size >= IP_USER_CACHE_ENTRIES) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(ip, { at: now, user });
    return user;
  };
}
