// Where mail for a recipient domain goes: the configured smarthost, or the domain's MX hosts
// (RFC 5321 section 5.1) resolved to addresses through Outpost's own Resolver, so that
// OUTPOST_DNS_SERVERS governs every lookup (nodemailer would otherwise use the system resolver).
import { isIP } from 'node:net';
import type { Resolver } from '../ports.js';
import { isInternalAddress } from './private-address.js';

/** One address to try, with the name it was found under (for SNI, logs and Remote-MTA). */
export interface DeliveryTarget {
  /** The MX (or smarthost) name as published; equals `address` for IP literals. */
  name: string;
  address: string;
  port: number;
  /**
   * Use STARTTLS and verify the certificate against `name`: set for a smarthost given by name,
   * which the operator chose and whose certificate should match it. Opportunistic TLS to MX hosts
   * stays unverified (delivery.requireTls turns verification on for every target).
   */
  verifyTls?: boolean;
}

/** A routing failure that applies to every recipient of the domain. */
export interface RouteFailure {
  temporary: boolean;
  /** RFC 3463 enhanced status code. */
  status: string;
  /** Human-readable reason, used as the diagnostic in logs and DSNs. */
  diagnostic: string;
}

export type Route = { kind: 'targets'; targets: DeliveryTarget[] } | ({ kind: 'failed' } & RouteFailure);

export interface RouteOptions {
  /** host:port of a smarthost; when set, every domain is routed there. */
  relayHost?: string | undefined;
  resolver: Resolver;
  /** Port of MX hosts: 25 on the Internet; tests point it at a local test MX. */
  mxPort?: number;
  /**
   * Keep MX (and address literal) addresses on loopback, private and link-local networks
   * (delivery.allowPrivateMxAddresses). Default false: they are skipped. The smarthost is the
   * operator's choice and is never filtered.
   */
  allowPrivateAddresses?: boolean;
}

/** DNS error codes of node:dns that mean "this name does not exist" (NXDOMAIN). */
const NXDOMAIN = new Set(['ENOTFOUND']);
/** "The name exists, but has no records of this type." */
const NODATA = new Set(['ENODATA']);

function dnsCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) return String(error.code);
  return 'EUNKNOWN';
}

function isAbsent(error: unknown): boolean {
  const code = dnsCode(error);
  return NXDOMAIN.has(code) || NODATA.has(code);
}

/** The part after the last "@", lower-cased; an IP literal domain keeps its brackets. */
export function recipientDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return (at >= 0 ? address.slice(at + 1) : address).toLowerCase();
}

/** Splits "host:port" and "[v6]:port" (the config schema has validated the shape). */
export function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  if (!match || host === undefined) throw new Error(`"${value}" is not host:port; set delivery.relayHost like "smtp.example.net:587"`);
  return { host, port: Number(match[3]) };
}

/**
 * A and AAAA addresses of one host name. IPv4 first: many senders have no working IPv6 route,
 * and an MX publishing both accepts mail on either. Returns [] when the name has no address;
 * throws on lookup failures that may heal (SERVFAIL, timeout).
 */
async function addressesOf(name: string, resolver: Resolver): Promise<string[]> {
  if (isIP(name)) return [name];
  const settled = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  const addresses: string[] = [];
  let transient: unknown;
  for (const result of settled) {
    if (result.status === 'fulfilled') addresses.push(...result.value);
    else if (!isAbsent(result.reason)) transient = result.reason;
  }
  if (addresses.length === 0 && transient !== undefined) throw transient;
  return addresses;
}

function temporaryDnsFailure(what: string, error: unknown): Route {
  return {
    kind: 'failed',
    temporary: true,
    status: '4.4.3',
    diagnostic: `DNS lookup of ${what} failed (${dnsCode(error)}); will retry`,
  };
}

async function smarthostRoute(relayHost: string, resolver: Resolver): Promise<Route> {
  const { host, port } = parseHostPort(relayHost);
  let addresses: string[];
  try {
    addresses = await addressesOf(host, resolver);
  } catch (error: unknown) {
    return temporaryDnsFailure(`relay host ${host}`, error);
  }
  // A smarthost that does not resolve is an operator's configuration problem, not the
  // recipient's: keep the mail queued (temporary) rather than bouncing it.
  if (addresses.length === 0) {
    return { kind: 'failed', temporary: true, status: '4.4.4', diagnostic: `relay host ${host} has no address; check delivery.relayHost` };
  }
  const verifyTls = isIP(host) === 0;
  return { kind: 'targets', targets: addresses.map((address) => ({ name: host, address, port, ...(verifyTls ? { verifyTls } : {}) })) };
}

/** Routes mail for `domain`: smarthost if configured, else MX, else the implicit MX (RFC 5321 5.1). */
export async function routeDomain(domain: string, options: RouteOptions): Promise<Route> {
  const { resolver } = options;
  if (options.relayHost) return smarthostRoute(options.relayHost, resolver);
  const port = options.mxPort ?? 25;

  const allowed = (address: string): boolean => options.allowPrivateAddresses === true || !isInternalAddress(address);

  // Address literal: user@[192.0.2.1] goes straight to that address.
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain)?.[1];
  if (literal !== undefined && isIP(literal)) {
    if (!allowed(literal)) return internalOnly(domain, [literal]);
    return { kind: 'targets', targets: [{ name: literal, address: literal, port }] };
  }

  let exchanges: Array<{ exchange: string; priority: number }>;
  try {
    exchanges = await resolver.resolveMx(domain);
  } catch (error: unknown) {
    const code = dnsCode(error);
    if (NXDOMAIN.has(code)) {
      return { kind: 'failed', temporary: false, status: '5.1.2', diagnostic: `recipient domain ${domain} does not exist (NXDOMAIN)` };
    }
    if (!NODATA.has(code)) return temporaryDnsFailure(`MX of ${domain}`, error);
    exchanges = [];
  }

  // RFC 7505: a single MX of "." (node reports the root as '') means "accepts no mail".
  const isNullMx = (exchange: string): boolean => exchange === '' || exchange === '.';
  if (exchanges.length === 1 && exchanges.every((mx) => isNullMx(mx.exchange))) {
    return { kind: 'failed', temporary: false, status: '5.1.10', diagnostic: `recipient domain ${domain} accepts no mail (null MX, RFC 7505)` };
  }
  exchanges = exchanges.filter((mx) => !isNullMx(mx.exchange));

  // Implicit MX: no MX records means the domain itself is the mail host.
  const hosts = exchanges.length > 0 ? [...exchanges].sort((a, b) => a.priority - b.priority).map((mx) => mx.exchange) : [domain];

  const targets: DeliveryTarget[] = [];
  const skipped: string[] = [];
  let transient: unknown;
  for (const host of hosts) {
    const name = host.replace(/\.$/, '');
    try {
      for (const address of await addressesOf(name, resolver)) {
        if (allowed(address)) targets.push({ name, address, port });
        else skipped.push(`${name}[${address}]`);
      }
    } catch (error: unknown) {
      transient = error;
    }
  }
  if (targets.length > 0) return { kind: 'targets', targets };
  if (skipped.length > 0 && transient === undefined) return internalOnly(domain, skipped);
  if (transient !== undefined) return temporaryDnsFailure(`the mail hosts of ${domain}`, transient);
  if (exchanges.length === 0) {
    return { kind: 'failed', temporary: false, status: '5.1.2', diagnostic: `recipient domain ${domain} has no MX and no address records` };
  }
  // Like Postfix: MX hosts without addresses are usually a DNS change in progress, so defer.
  return { kind: 'failed', temporary: true, status: '4.4.4', diagnostic: `no MX host of ${domain} has an address (${hosts.join(', ')})` };
}

/**
 * Every address of the domain is internal. Temporary, like Postfix's "MX host has no usable
 * address": DNS may be fixed; if not, the message bounces when its retry schedule runs out.
 */
function internalOnly(domain: string, skipped: string[]): Route {
  return {
    kind: 'failed',
    temporary: true,
    status: '4.4.4',
    diagnostic: `every mail host address of ${domain} is loopback, private or link-local (${skipped.join(', ')}); skipped (delivery.allowPrivateMxAddresses is off)`,
  };
}
