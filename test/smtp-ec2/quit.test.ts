// After QUIT the server closes the connection once its 221 is flushed (smtp-server-patches.ts,
// patch 8), whether or not the client closes its side: the session ends at once, not after
// smtp-server's 5 s half-close timer, and the client has read the 221 before the end.
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import '../../smtp-ec2/smtp-server-patches.js';

const servers: SMTPServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

describe('QUIT', () => {
  it('ends the session as soon as the 221 is flushed, while the client keeps its side open', async () => {
    const closed: number[] = [];
    const server = new SMTPServer({ logger: false, disabledCommands: ['AUTH', 'STARTTLS'], onClose: () => closed.push(performance.now()) });
    server.on('error', () => undefined);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.server.address();
    if (!address || typeof address === 'string') throw new Error('no port');

    // allowHalfOpen: the client does not answer the server's FIN with its own.
    const socket = connect({ port: address.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (chunk) => (text += String(chunk)));
    const ended = once(socket, 'end');
    while (!/^220 /m.test(text)) await new Promise((resolve) => setTimeout(resolve, 5));
    socket.write('EHLO client.test\r\nQUIT\r\n');
    const quitAt = performance.now();
    await ended;
    expect(text).toMatch(/^221 /m);
    while (closed.length === 0 && performance.now() - quitAt < 3000) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toHaveLength(1);
    expect(closed[0]! - quitAt).toBeLessThan(1000);
    expect(socket.writable).toBe(true);
    socket.destroy();
  });

  it('runs nothing a client pipelines after QUIT, and still ends the session at once', async () => {
    const closed: number[] = [];
    const mailFrom: string[] = [];
    const server = new SMTPServer({
      logger: false,
      disabledCommands: ['AUTH', 'STARTTLS'],
      onMailFrom: (address, _session, callback) => {
        mailFrom.push(address.address);
        callback();
      },
      onClose: () => closed.push(performance.now()),
    });
    server.on('error', () => undefined);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.server.address();
    if (!address || typeof address === 'string') throw new Error('no port');

    const socket = connect({ port: address.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (chunk) => (text += String(chunk)));
    const ended = once(socket, 'end');
    while (!/^220 /m.test(text)) await new Promise((resolve) => setTimeout(resolve, 5));
    socket.write('EHLO client.test\r\nQUIT\r\nMAIL FROM:<after@quit.test>\r\nRSET\r\n');
    const quitAt = performance.now();
    await ended;
    // The 221 is the last reply: nothing after QUIT was answered.
    expect(text.trimEnd().split('\r\n').at(-1)).toMatch(/^221 /);
    while (closed.length === 0 && performance.now() - quitAt < 3000) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toHaveLength(1);
    expect(closed[0]! - quitAt).toBeLessThan(1000);
    expect(mailFrom).toEqual([]);
    socket.destroy();
  });
});
