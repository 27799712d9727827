// Connect: DNSBL zones (config policy.dnsblZones), asked through the Resolver. The query name is
// the address reversed (IPv4 octets, IPv6 nibbles) under the zone; an A record in 127.0.0.0/24
// means listed. NXDOMAIN means not listed. Any other answer (a DNS error, or 127.255.255.x, the
// code lists use for "query refused") counts as not listed and is logged: a broken list must not
// stop all mail.
import { isIP } from 'node:net';
import { pass, reject, tempfail, type Check } from '../checks/check.js';
import type { ConnectFacts } from '../checks/session.js';
import type { Config } from '../config.js';
import type { Logger, Resolver } from '../ports.js';
import { PolicySymbol } from './symbols.js';

/** The DNSBL query label for an address ("2.0.0.127" for 127.0.0.2), or undefined if not an IP. */
export function reversedAddress(ip: string): string | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const address = mapped?.[1] ?? ip;
  const version = isIP(address);
  if (version === 4) return address.split('.').reverse().join('.');
  if (version !== 6) return undefined;
  const [head = '', tail = ''] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
    : headGroups;
  return groups
    .map((group) => group.padStart(4, '0'))
    .join('')
    .split('')
    .reverse()
    .join('.');
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) return String(error.code);
  return error instanceof Error ? error.message : String(error);
}

export function dnsbl(resolver: Resolver, policy: Config['policy'], logger?: Logger): Check<ConnectFacts> {
  return {
    name: 'dnsbl',
    async check(facts) {
      const label = reversedAddress(facts.clientIp);
      if (!label || policy.dnsblZones.length === 0) return pass();
      const answers = await Promise.all(
        policy.dnsblZones.map(async (zone) => {
          const name = `${label}.${zone}`;
          try {
            const addresses = await resolver.resolve4(name);
            const listed = addresses.filter((address) => /^127\.0\.0\.\d{1,3}$/.test(address));
            if (listed.length === 0) logger?.warn('DNSBL answered outside 127.0.0.0/24; ignoring', { zone, ip: facts.clientIp, addresses });
            return { zone, listed };
          } catch (error: unknown) {
            const code = errorCode(error);
            if (code !== 'ENOTFOUND' && code !== 'ENODATA') logger?.warn('DNSBL query failed; treating as not listed', { zone, ip: facts.clientIp, error: code });
            return { zone, listed: [] as string[] };
          }
        }),
      );
      const hits = answers.filter((answer) => answer.listed.length > 0);
      if (hits.length === 0) return pass();
      const symbols = hits.map((hit) => ({ name: PolicySymbol.DNSBL_LISTED, evidence: { ip: facts.clientIp, zone: hit.zone, answer: hit.listed } }));
      const zones = hits.map((hit) => hit.zone).join(', ');
      return policy.dnsblAction === 'reject'
        ? reject(554, '5.7.1', `Your address ${facts.clientIp} is listed in ${zones}; mail from it is refused`, symbols)
        : tempfail(421, '4.7.0', `Your address ${facts.clientIp} is listed in ${zones}; try again later`, symbols);
    },
  };
}
