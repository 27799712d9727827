// Outgoing users (SMTP identities) of the three kinds in the seed, and their passwords.
import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import type { Ceilings } from './ceilings.js';
import type { SettingOverrides } from './settings.js';

const scrypt = promisify(scryptCallback) as (
  password: string | Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

export type IdentityKind = 'mailbox' | 'domain' | 'ip';

export interface Tenant {
  id: string;
  name: string;
  settings: SettingOverrides;
  /** Set by the operator: how far the tenant may loosen its settings (core/ceilings.ts). */
  ceilings: Ceilings;
  suspended: boolean;
  createdAt: number;
}

export interface Domain {
  name: string;
  tenantId: string;
  createdAt: number;
}

export interface OutgoingUser {
  id: string;
  tenantId: string;
  kind: IdentityKind;
  /** `user@domain` (mailbox), `domain` (domain) or an IP/CIDR (ip), normalised. */
  identity: string;
  /** The domain the identity belongs to (mailbox and domain users); null for IP users. */
  domain: string | null;
  passwordHash: string | null;
  settings: SettingOverrides;
  createdAt: number;
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const LOCAL_RE = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;

export function normaliseDomain(domain: string): string {
  const value = domain.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN_RE.test(value)) throw new IdentityError(`"${domain}" is not a valid domain name`);
  return value;
}

/** Normalises an IP or CIDR: address validated, prefix within range, IPv4 without a prefix = /32. */
export function normaliseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6'; text: string } {
  const [address = '', prefixText, extra] = value.trim().toLowerCase().split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) throw new IdentityError(`"${value}" is not an IP address or CIDR range`);
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix < 0 || prefix > max) {
    throw new IdentityError(`"${value}" has an invalid prefix length`);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6', text: `${address}/${prefix}` };
}

/** Classifies what an operator typed as an identity and normalises it. */
export function parseIdentity(input: string): { kind: IdentityKind; identity: string; domain: string | null } {
  const value = input.trim();
  const at = value.lastIndexOf('@');
  if (at > 0) {
    const local = value.slice(0, at);
    if (!LOCAL_RE.test(local.toLowerCase()) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
      throw new IdentityError(`"${value}" is not a valid mailbox address`);
    }
    const domain = normaliseDomain(value.slice(at + 1));
    // The local part keeps its case for display, but logins compare case-insensitively.
    return { kind: 'mailbox', identity: `${local.toLowerCase()}@${domain}`, domain };
  }
  if (isIP(value.split('/')[0] ?? '') !== 0) {
    return { kind: 'ip', identity: normaliseCidr(value).text, domain: null };
  }
  const domain = normaliseDomain(value);
  return { kind: 'domain', identity: domain, domain };
}

/**
 * The one name a login attempt is known by: the identity `parseIdentity` makes of it (the one a
 * user is looked up by, so `Bob@ Other.test.` is `bob@other.test`), or the trimmed, lower-cased
 * text when it names no mailbox or domain. Failed logins are counted under this name: counting
 * under any other spelling would let variants of one login escape its limit.
 */
export function canonicalLogin(username: string): string {
  try {
    const parsed = parseIdentity(username);
    if (parsed.kind !== 'ip') return parsed.identity;
  } catch {
    // not a login any user could have: counted as typed
  }
  return username.trim().toLowerCase();
}

// scrypt cost: N=2^15 takes ~50 ms here, slow enough to make guessing expensive.
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  if (password.length < 8) throw new IdentityError('a password needs at least 8 characters');
  const salt = randomBytes(16);
  const key = await scrypt(password.normalize('NFC'), salt, SCRYPT.keylen, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

// Hashed against when the user does not exist, so that unknown users take as long as wrong passwords.
const DUMMY_HASH = `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;

/** Constant-time check; a null hash (unknown user, or a user without password) is always false. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? DUMMY_HASH).split('$');
  const [scheme, n, r, p, saltText, keyText] = parts;
  if (scheme !== 'scrypt' || !n || !r || !p || !saltText || !keyText) return false;
  const expected = Buffer.from(keyText, 'base64');
  const actual = await scrypt(password.normalize('NFC'), Buffer.from(saltText, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: SCRYPT.maxmem,
  });
  return timingSafeEqual(actual, expected) && stored !== null;
}

/** The 128-bit network address of an IP, for prefix comparison. */
function ipToBigInt(address: string): { value: bigint; bits: number } {
  if (isIP(address) === 4) {
    const value = address.split('.').reduce((acc, octet) => (acc << 8n) + BigInt(Number(octet)), 0n);
    return { value, bits: 32 };
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return ipToBigInt(mapped[1]);
  const [head = '', tail = ''] = address.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...headParts, ...Array<string>(8 - headParts.length - tailParts.length).fill('0'), ...tailParts]
    : headParts;
  const value = groups.reduce((acc, group) => (acc << 16n) + BigInt(parseInt(group || '0', 16)), 0n);
  return { value, bits: 128 };
}

/** Whether `address` (a client IP, possibly IPv4-mapped IPv6) lies in `cidr`. */
export function cidrContains(cidr: string, address: string): boolean {
  const range = normaliseCidr(cidr);
  if (isIP(address) === 0) return false;
  const ip = ipToBigInt(address);
  const net = ipToBigInt(range.address);
  if (ip.bits !== net.bits) return false;
  const shift = BigInt(net.bits - range.prefix);
  return ip.value >> shift === net.value >> shift;
}

/** The most specific IP user whose range holds `address`. */
export function matchIpUser<U extends { identity: string }>(users: U[], address: string): U | undefined {
  let best: { user: U; prefix: number } | undefined;
  for (const user of users) {
    if (!cidrContains(user.identity, address)) continue;
    const prefix = normaliseCidr(user.identity).prefix;
    if (!best || prefix > best.prefix) best = { user, prefix };
  }
  return best?.user;
}

/**
 * An IP user relays without AUTH, so its range must hold only the tenant's own mail servers:
 * ranges wider than these are refused (a /0 would be an open relay).
 */
export const WIDEST_IP_USER_PREFIX = { ipv4: 16, ipv6: 32 } as const;

export type IpRangeProblem<U> = { reason: 'too-wide'; widest: number } | { reason: 'overlap'; other: U };

/**
 * Why `range` may not become an IP user of `tenantId`, if it may not: too wide, or overlapping a
 * range of another tenant (the most specific range wins at connect, so an overlap would let one
 * tenant take over another's smarthost mail). Nested ranges within one tenant are fine.
 */
export function ipRangeProblem<U extends Pick<OutgoingUser, 'tenantId' | 'identity'>>(range: string, tenantId: string, ipUsers: ReadonlyArray<U>): IpRangeProblem<U> | undefined {
  const { address, prefix, family } = normaliseCidr(range);
  const widest = WIDEST_IP_USER_PREFIX[family];
  if (prefix < widest) return { reason: 'too-wide', widest };
  for (const other of ipUsers) {
    if (other.tenantId === tenantId) continue;
    if (cidrContains(other.identity, address) || cidrContains(range, normaliseCidr(other.identity).address)) return { reason: 'overlap', other };
  }
  return undefined;
}

/** The widest range an IP user made with a tenant key may cover: one small network of mail servers. */
export const WIDEST_TENANT_IP_PREFIX = { ipv4: 24, ipv6: 56 } as const;

/**
 * Addresses that are never a tenant's own public mail servers (IANA special-purpose registries):
 * a range touching one, made with a tenant key, would let whoever sits there relay without AUTH.
 */
export const SPECIAL_IP_RANGES: ReadonlyArray<{ range: string; what: string }> = [
  { range: '0.0.0.0/8', what: 'reserved ("this network")' },
  { range: '10.0.0.0/8', what: 'private' },
  { range: '100.64.0.0/10', what: 'shared address space (carrier-grade NAT)' },
  { range: '127.0.0.0/8', what: 'loopback' },
  { range: '169.254.0.0/16', what: 'link-local' },
  { range: '172.16.0.0/12', what: 'private' },
  { range: '192.0.0.0/24', what: 'reserved (IETF protocol assignments)' },
  { range: '192.0.2.0/24', what: 'reserved (documentation)' },
  { range: '192.88.99.0/24', what: 'reserved (6to4 relay anycast)' },
  { range: '192.168.0.0/16', what: 'private' },
  { range: '198.18.0.0/15', what: 'reserved (benchmarking)' },
  { range: '198.51.100.0/24', what: 'reserved (documentation)' },
  { range: '203.0.113.0/24', what: 'reserved (documentation)' },
  { range: '224.0.0.0/4', what: 'multicast' },
  { range: '240.0.0.0/4', what: 'reserved' },
  { range: '::/128', what: 'reserved (unspecified)' },
  { range: '::1/128', what: 'loopback' },
  { range: '::ffff:0:0/96', what: 'reserved (IPv4-mapped)' },
  { range: '64:ff9b::/96', what: 'reserved (NAT64)' },
  { range: '100::/64', what: 'reserved (discard)' },
  { range: '2001::/23', what: 'reserved (IETF protocol assignments)' },
  { range: '2001:db8::/32', what: 'reserved (documentation)' },
  { range: '2002::/16', what: 'reserved (6to4)' },
  { range: 'fc00::/7', what: 'private (unique local)' },
  { range: 'fe80::/10', what: 'link-local' },
  { range: 'ff00::/8', what: 'multicast' },
];

/**
 * Why a tenant key may not make `range` an IP user, if it may not: wider than /24 (IPv6 /56), or
 * touching a loopback, private, link-local, multicast or reserved range. The operator is not bound.
 */
export function tenantIpRangeProblem(range: string): string | undefined {
  const { address, prefix, family } = normaliseCidr(range);
  const widest = WIDEST_TENANT_IP_PREFIX[family];
  if (prefix < widest) return `${range} is wider than /${widest}: a tenant may make IP users of at most a /${widest}; ask the operator for a wider range`;
  for (const special of SPECIAL_IP_RANGES) {
    const other = normaliseCidr(special.range);
    if (other.family !== family) continue;
    if (cidrContains(special.range, address) || cidrContains(range, other.address)) {
      return `${range} lies in ${special.range}, which is ${special.what}: it cannot hold a tenant's public mail servers`;
    }
  }
  return undefined;
}

/**
 * A user's id follows from its tenant and identity, so that deleting and re-creating the user
 * finds its locks and counters (keyed by user id) where they were, for as long as they last.
 */
export function userIdFor(tenantId: string, identity: string): string {
  const hex = createHash('sha256').update(`${tenantId}\n${identity}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}
