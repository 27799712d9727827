// Where each login has succeeded from: the memory behind the "smart lockout" of failed AUTH.
// A source is what one client controls: an IPv4 address, or an IPv6 /64 (one end site's
// network; a host picks new addresses inside it at will, so single IPv6 addresses would make
// every reconnection a stranger).
import { isIP } from 'node:net';
export type { LoginSourceStore } from './ports/login-sources.js';

/** The source of a client address: IPv4 as is, IPv6 as its /64 (`2001:db8:1:2::/64`). */
export function loginSource(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (isIP(ip) !== 6) return ip;
  const groups = ipv6Groups(ip.toLowerCase());
  return `${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail becomes two groups). */
function ipv6Groups(address: string): number[] {
  const withoutZone = address.split('%')[0] ?? address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(withoutZone);
  const text = dotted
    ? withoutZone.slice(0, dotted.index) +
      [(Number(dotted[1]) << 8) + Number(dotted[2]), (Number(dotted[3]) << 8) + Number(dotted[4])].map((group) => group.toString(16)).join(':')
    : withoutZone;
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}
