// The receiving server misbehaving at the end of DATA, through the whole single node: it hangs up
// after the final dot without answering, answers 4xx, or answers 5xx. A hang-up or a 4xx is a
// temporary failure: the message is deferred and delivered on a later attempt (after a hang-up
// the receiver may hold two copies: it had the data, we had no answer; that is SMTP's known
// duplicate window, RFC 1047). A 5xx bounces, with a DSN to the sender. Nothing is lost.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageWithStatus, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';

type EndOfData = 'hang-up' | 'tempfail' | 'reject' | 'accept';

interface Downstream {
  port: number;
  /** Every message whose data was received in full, with what was done at its end of data. */
  received: Array<{ mailFrom: string; subject: string; answer: EndOfData }>;
  stop(): Promise<void>;
}

/**
 * A minimal SMTP server on a raw socket, so that it can do what no SMTP library will: close the
 * connection after the end-of-data dot without a reply. `answer` decides by subject and attempt.
 */
async function startDownstream(answer: (subject: string, attempt: number) => EndOfData): Promise<Downstream> {
  const received: Downstream['received'] = [];
  const attempts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // the relay may reset; nothing to do here
    let buffer = '';
    let inData = false;
    let mailFrom = '';
    const reply = (line: string): void => {
      if (!socket.destroyed) socket.write(line + '\r\n');
    };
    reply('220 downstream.test ESMTP');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end < 0) return;
          const data = buffer.slice(0, end);
          buffer = buffer.slice(end + 5);
          inData = false;
          const subject = /^Subject: (.*)$/m.exec(data)?.[1]?.trim() ?? '';
          const attempt = (attempts.get(subject) ?? 0) + 1;
          attempts.set(subject, attempt);
          const what = mailFrom === '' ? 'accept' : answer(subject, attempt);
          received.push({ mailFrom, subject, answer: what });
          if (what === 'hang-up') return void socket.destroy();
          reply(what === 'tempfail' ? '451 4.3.0 Queue file write error, try again' : what === 'reject' ? '554 5.7.1 Message refused by policy' : '250 2.0.0 Ok: queued');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') reply('250 downstream.test');
        else if (verb === 'MAIL') {
          mailFrom = /<([^>]*)>/.exec(line)?.[1] ?? '';
          reply('250 2.1.0 Ok');
        } else if (verb === 'RCPT') reply('250 2.1.5 Ok');
        else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye');
          socket.end();
        } else reply(verb === 'RSET' || verb === 'NOOP' ? '250 2.0.0 Ok' : '502 5.5.2 Error: command not recognized');
      }
    });
  });
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  return {
    port,
    received,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('downstream faults at the end of DATA', () => {
  let downstream: Downstream;
  let node: E2eNode;
  beforeAll(async () => {
    downstream = await startDownstream((subject, attempt) => {
      if (subject.startsWith('hang-up')) return attempt === 1 ? 'hang-up' : 'accept';
      if (subject.startsWith('tempfail')) return attempt === 1 ? 'tempfail' : 'accept';
      if (subject.startsWith('reject')) return 'reject';
      return 'accept';
    });
    node = await startE2eNode({ relayHost: `127.0.0.1:${downstream.port}` });
    const tenant = await node.tenant('acme', ['acme.test']);
    await node.user(tenant, 'alice@acme.test');
  });
  afterAll(async () => {
    await node?.stop();
    await downstream?.stop();
  });

  it('retries after a hang-up following the final dot, and delivers (the receiver may hold a duplicate)', async () => {
    const id = await submit(node.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'hang-up after data' });
    const { events } = await messageWithStatus(node.node, id, 'delivered');
    expect(events.find((event) => event.event === 'deferred')?.detail).toMatchObject({ recipient: 'bob@example.org', attempt: 1 });
    const copies = downstream.received.filter((mail) => mail.subject === 'hang-up after data');
    expect(copies.map((mail) => mail.answer)).toEqual(['hang-up', 'accept']);
  });

  it('defers on a 4xx after DATA and delivers on the next attempt', async () => {
    const id = await submit(node.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'tempfail after data' });
    const { events } = await messageWithStatus(node.node, id, 'delivered');
    expect(events.find((event) => event.event === 'deferred')?.detail).toMatchObject({ status: '4.3.0', diagnostic: '451 4.3.0 Queue file write error, try again' });
    expect(downstream.received.filter((mail) => mail.subject === 'tempfail after data').map((mail) => mail.answer)).toEqual(['tempfail', 'accept']);
  });

  it('bounces on a 5xx after DATA and tells the sender with a DSN', async () => {
    const id = await submit(node.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'reject after data' });
    const { events } = await messageWithStatus(node.node, id, 'bounced');
    expect(events.find((event) => event.event === 'bounced')?.detail).toMatchObject({ recipient: 'bob@example.org', status: '5.7.1' });
    expect(events.some((event) => event.event === 'dsn-sent')).toBe(true);
    // One attempt only, then the DSN (null sender) reaches the sender's side.
    expect(downstream.received.filter((mail) => mail.subject === 'reject after data').map((mail) => mail.answer)).toEqual(['reject']);
    await expect.poll(() => downstream.received.some((mail) => mail.mailFrom === ''), { timeout: 10_000 }).toBe(true);
  });
});
