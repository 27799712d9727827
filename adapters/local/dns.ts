// The Resolver port on node:dns. OUTPOST_DNS_SERVERS names the servers ("host:port", "[v6]:port");
// without them the system's resolv.conf servers are used. Errors keep node's codes (ENOTFOUND =
// NXDOMAIN, ENODATA = no records of the type, ETIMEOUT, ESERVFAIL...), which routing relies on.
import { Resolver as DnsResolver } from 'node:dns/promises';
import type { Resolver } from '../../core/ports.js';

export function createResolver(config: { servers: string[]; timeoutMs: number }): Resolver {
  // tries: 2 so that one lost UDP packet is not yet a temporary delivery failure.
  const dns = new DnsResolver({ timeout: config.timeoutMs, tries: 2 });
  if (config.servers.length > 0) dns.setServers(config.servers);
  return {
    resolveMx: (domain) => dns.resolveMx(domain),
    resolve4: (name) => dns.resolve4(name),
    resolve6: (name) => dns.resolve6(name),
    resolveTxt: (name) => dns.resolveTxt(name),
  };
}
