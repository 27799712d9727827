// Where each login has succeeded from: the memory behind the "smart lockout" of failed AUTH.
// A source is what one client controls: an IPv4 address, or an IPv6 /64 (one end site's
// network; a host picks new addresses inside it at will, so single IPv6 addresses would make
// every reconnection a stranger).
import { ipv6Groups } from './ip-address.js';
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

