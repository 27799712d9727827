// Session ids (the key of the ingress's per-session state) come from the pooled CSPRNG instead of
// one crypto.randomBytes call per connection (smtp-server-patches.ts, patch 7), in smtp-server's
// form; a listener that reads a PROXY header keeps smtp-server's own path.
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import '../../smtp-ec2/smtp-server-patches.js';
import { pooledRandomBytes } from '../../core/random-pool.js';

const servers: SMTPServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

/** A server that records each session as its client connects; resolves with its port. */
async function listening(options: ConstructorParameters<typeof SMTPServer>[0], seen: SMTPServerSession[]): Promise<number> {
  const server = new SMTPServer({
    ...options,
    logger: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    onConnect: (session, callback) => {
      seen.push(session);
      callback();
    },
  });
  server.on('error', () => undefined);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Connects, optionally sends `first`, and waits for the greeting. */
async function greeted(port: number, first?: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  if (first) socket.write(first);
  let text = '';
  for await (const chunk of socket) {
    text += String(chunk);
    if (/^220 /m.test(text)) break;
  }
  return socket;
}

describe('session ids', () => {
  it('are the ten pool bytes drawn for the connection, in base 32, and differ between sessions', async () => {
    const seen: SMTPServerSession[] = [];
    const port = await listening({}, seen);
    const before = pooledRandomBytes(1);
    const socket = await greeted(port);
    const after = pooledRandomBytes(1);
    socket.destroy();
    expect(after.buffer).toBe(before.buffer);
    expect(after.byteOffset - before.byteOffset).toBe(11);
    const drawn = Buffer.from(before.buffer, before.byteOffset + 1, 10);
    expect(seen[0]?.id).toBe(BigInt(`0x${drawn.toString('hex')}`).toString(32).padStart(16, '0'));

    const sockets = await Promise.all(Array.from({ length: 30 }, () => greeted(port)));
    for (const other of sockets) other.destroy();
    const ids = seen.map((session) => session.id);
    expect(new Set(ids).size).toBe(31);
    for (const id of ids) expect(id).toMatch(/^[0-9a-v]{16}$/);
  });

  it('on a listener that takes a PROXY header, are smtp-server\'s own, and the header is still read', async () => {
    const seen: SMTPServerSession[] = [];
    const port = await listening({ useProxy: true }, seen);
    const before = pooledRandomBytes(1);
    const socket = await greeted(port, 'PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n');
    const after = pooledRandomBytes(1);
    socket.destroy();
    expect(after.byteOffset - before.byteOffset).toBe(1);
    expect(seen[0]?.remoteAddress).toBe('203.0.113.7');
    expect(seen[0]?.id).toMatch(/^[0-9a-v]{16}$/);
  });
});
