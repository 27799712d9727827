// One HTTP/1.1 GET written byte for byte on a socket: unlike fetch (and the URL parser behind
// it), nothing normalises `/../` or touches percent-encoding, so a request can carry the path an
// attacker would send.
import { connect } from 'node:net';

export async function rawHttpGet(port: number, path: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split >= 0 ? text.slice(0, split) : text;
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), head, body: split >= 0 ? text.slice(split + 4) : '' });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

/** Encoded-slash traversals from the web root to `absolutePath` (e.g. /etc/host.conf), at several depths. */
export function traversals(absolutePath: string): string[] {
  const target = absolutePath.replace(/^\//, '').split('/').join('%2f');
  return [
    `/${'..%2f'.repeat(12)}${target}`,
    `/..%2f${'..%2f'.repeat(12)}${target}`,
    `/${'..%5c'.repeat(12)}${target}`,
    `/assets/${'..%2F'.repeat(12)}${target}`,
    `/%2e%2e%2f${'%2e%2e%2f'.repeat(12)}${target}`,
  ];
}
