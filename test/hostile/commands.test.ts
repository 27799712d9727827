// Hostile command streams on the submission port, one case per test, each with the exact answer
// Outpost gives: STARTTLS command injection, lines over the limits, NUL and control characters,
// AUTH before TLS, pipelining abuse, early talkers and slowloris clients. The node runs with a
// 2-second socket timeout so that the timeouts show within the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawMessage, rawSession, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { pause, RudeClient } from './rude-client.js';

const SENDER = 'alice@acme.test';
/** Everything its MAIL and RCPT check is read from memory (autoLock on: no counter read at RCPT). */
const FLOOD_SENDER = 'flood@acme.test';
const TIMEOUT_SECONDS = 2;

let e2e: E2eNode;

beforeAll(async () => {
  e2e = await startE2eNode({
    config: { smtp: { socketTimeoutSeconds: TIMEOUT_SECONDS, greetingDelayMs: 100 }, policy: { reputation: { throttleScore: 10_000, rejectScore: 20_000 } } },
  });
  const tenant = await e2e.tenant('acme', ['acme.test']);
  // No rate limits: pipelining abuse here is about the protocol, not about sending volume.
  await e2e.user(tenant, SENDER, { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0, autoLock: false });
  await e2e.user(tenant, FLOOD_SENDER, { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0 });
});

afterAll(async () => {
  await e2e?.stop();
});

const port = (): number => e2e.node.ports.submission;
const authPlain = (): string => `AUTH PLAIN ${Buffer.from(`\0${SENDER}\0a good long password`).toString('base64')}`;

/** An authenticated session with an open transaction to bob, at the 354 of DATA. */
async function inData(): Promise<RawSmtp> {
  const { smtp, auth } = await rawSession(port(), SENDER);
  expect(auth).toMatch(/^235 /);
  expect(await smtp.command(`MAIL FROM:<${SENDER}>`)).toMatch(/^250 /);
  expect(await smtp.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
  expect(await smtp.command('DATA')).toMatch(/^354 /);
  return smtp;
}

describe('STARTTLS command injection', () => {
  /** EHLO, then STARTTLS with `injected` in the same packet, then the TLS handshake. */
  async function startTlsWith(injected: string): Promise<RudeClient> {
    const client = await RudeClient.connect(port());
    await client.until(/^220 /m);
    client.write('EHLO client.test\r\n');
    await client.until(/^250 /m);
    client.write(`STARTTLS\r\n${injected}\r\n`);
    expect(await client.until(/^220 2\.0\.0 /m)).toMatch(/^220 2\.0\.0 Ready to start TLS/m);
    await client.tls();
    return client;
  }

  it('discards a command sent in the same packet as STARTTLS: after the handshake, EHLO gets the only reply', async () => {
    const client = await startTlsWith('RSET');
    client.write('EHLO client.test\r\n');
    const reply = await client.until(/^250 [^\r\n]*\r\n/m);
    await pause(300);
    expect(client.text).toBe(reply);
    expect(reply).toMatch(/^250-relay\.test[\s\S]*AUTH PLAIN LOGIN/);
    client.reset();
  });

  it('does not run an AUTH injected after STARTTLS: the TLS session is not logged in (MAIL FROM gets 530 5.7.0)', async () => {
    const client = await startTlsWith(authPlain());
    client.write(`EHLO client.test\r\nMAIL FROM:<${SENDER}>\r\n`);
    expect(await client.until(/^530 /m)).toMatch(/^250 [^\r\n]*\r\n530 5\.7\.0 Authentication required/m);
    client.reset();
  });
});

describe('lines over the limits', () => {
  it('answers a command line over maxCommandLength (4096) with 421 4.4.2 and closes', async () => {
    const { smtp } = await rawSession(port());
    expect(await smtp.command(`NOOP ${'x'.repeat(5000)}`)).toMatch(/^421 4\.4\.2 Error: Command line too long/);
    expect(await smtp.reply(1000)).toMatch(/^CLOSED/);
  });

  it('refuses a recipient address over 254 octets with 553 5.1.3', async () => {
    const { smtp } = await rawSession(port(), SENDER);
    await smtp.command(`MAIL FROM:<${SENDER}>`);
    expect(await smtp.command(`RCPT TO:<${'a'.repeat(250)}@example.org>`)).toMatch(/^553 5\.1\.3 /);
    smtp.close();
  });

  it('refuses a message line over 998 octets with 550 5.6.0', async () => {
    const smtp = await inData();
    smtp.write(rawMessage(SENDER, 'bob@example.org', 'long line', [], 'x'.repeat(1200)));
    expect(await smtp.reply()).toMatch(/^550 5\.6\.0 Message has a line longer than 998 octets/);
    smtp.close();
  });
});

describe('NUL and control characters', () => {
  // Without the DATA inspector's NUL refusal this gets a 250.
  it('refuses a message with a NUL in its body with 550 5.6.0', async () => {
    const smtp = await inData();
    smtp.write(rawMessage(SENDER, 'bob@example.org', 'nul in body', [], 'before\x00after'));
    expect(await smtp.reply()).toMatch(/^550 5\.6\.0 /);
    smtp.close();
  });

  it('refuses a MAIL FROM with a NUL in it with 550 5.6.0 (a command with a NUL is never run)', async () => {
    const { smtp } = await rawSession(port(), SENDER);
    expect(await smtp.command('MAIL FROM:<ali\x00ce@acme.test>')).toMatch(/^550 5\.6\.0 /);
    smtp.close();
  });

  it('refuses an EHLO name with control characters with 501', async () => {
    const { client } = await RawSmtp.open(port());
    expect(await client.command('EHLO evil\x1b[31m.test')).toMatch(/^501 /);
    client.close();
  });

  it('ends a session that sends a bare CR inside a command line with 421', async () => {
    const { client } = await RawSmtp.open(port());
    await client.command('EHLO client.test');
    client.write('NOOP\rRSET\r\n');
    expect(await client.reply()).toMatch(/^421 .*bare LF or CR/);
    expect(await client.reply(1000)).toMatch(/^CLOSED/);
  });
});

describe('AUTH before TLS', () => {
  it('does not advertise AUTH before STARTTLS and answers AUTH with 538 5.7.0 without checking the password', async () => {
    const { client } = await RawSmtp.open(port());
    const ehlo = await client.command('EHLO client.test');
    expect(ehlo).toMatch(/STARTTLS/);
    expect(ehlo).not.toMatch(/AUTH/);
    expect(await client.command(authPlain())).toMatch(/^538 5\.7\.0 Error: Must issue a STARTTLS command first/);
    expect(await client.command('AUTH LOGIN')).toMatch(/^538 5\.7\.0 /);
    expect(await client.command(`MAIL FROM:<${SENDER}>`)).toMatch(/^530 5\.7\.0 /);
    client.close();
  });
});

describe('pipelining abuse', () => {
  it('answers 150 pipelined RCPTs in order: 100 accepted (maxRecipients), 50 with 452 4.5.3, then the NOOP after them', async () => {
    const { smtp } = await rawSession(port(), SENDER);
    await smtp.command(`MAIL FROM:<${SENDER}>`);
    const lines = Array.from({ length: 150 }, (_, i) => `RCPT TO:<r${i}@example.org>\r\n`).join('');
    smtp.write(lines + 'NOOP\r\n');
    const replies: string[] = [];
    for (let i = 0; i < 151; i++) replies.push(await smtp.reply());
    expect(replies.slice(0, 100).every((reply) => reply.startsWith('250 '))).toBe(true);
    expect(replies.slice(100, 150).every((reply) => /^452 4\.5\.3 /.test(reply))).toBe(true);
    expect(replies[150]).toMatch(/^250 2\.0\.0 /);
    smtp.close();
  });

  it('answers 2000 pipelined NOOPs in one write, each in order, and then QUIT with 221', async () => {
    const { smtp } = await rawSession(port());
    smtp.write('NOOP\r\n'.repeat(2000) + 'QUIT\r\n');
    let answered = 0;
    for (let i = 0; i < 2000; i++) if ((await smtp.reply()).startsWith('250 ')) answered += 1;
    expect(answered).toBe(2000);
    expect(await smtp.reply()).toMatch(/^221 /);
  });

  // MAIL, RCPT and RSET are answered in the turn that reads them when everything they check is in
  // memory (core/maybe.ts): smtp-server then reads the next pipelined command from inside that
  // answer. Thousands of them in one write must be answered in order, in a loop, not a stack.
  it('answers 2000 whole transactions pipelined in one write, each command in order, and the relay still takes mail', async () => {
    const { smtp, auth } = await rawSession(port(), FLOOD_SENDER);
    expect(auth).toMatch(/^235 /);
    smtp.write(`MAIL FROM:<${FLOOD_SENDER}>\r\nRCPT TO:<bob@example.org>\r\nRSET\r\n`.repeat(2000) + 'QUIT\r\n');
    const wrong: string[] = [];
    for (let i = 0; i < 2000 * 3; i++) {
      const reply = await smtp.reply();
      if (!reply.startsWith('250 ') && wrong.length < 3) wrong.push(`${i}: ${reply}`);
    }
    expect(wrong).toEqual([]);
    expect(await smtp.reply()).toMatch(/^221 /);
    const next = await inData();
    next.write(rawMessage(SENDER, 'bob@example.org', 'after the flood'));
    expect(await next.reply()).toMatch(/^250 2\.0\.0 /);
    next.close();
  });

  it('closes a session after 10 unrecognised commands with 421', async () => {
    const { client } = await RawSmtp.open(port());
    client.write('XYZZY\r\n'.repeat(10));
    const replies: string[] = [];
    for (let i = 0; i < 10; i++) replies.push(await client.reply());
    expect(replies.slice(0, 9).every((reply) => reply.startsWith('500 '))).toBe(true);
    expect(replies[9]).toMatch(/^421 .*too many unrecognized commands/);
  });

  it('refuses an HTTP request sent to the SMTP port with 421', async () => {
    const { client } = await RawSmtp.open(port());
    expect(await client.command('POST /v1/tenants HTTP/1.1')).toMatch(/^421 .*HTTP requests not allowed/);
  });
});

describe('early talkers and slowloris clients', () => {
  it('answers a client that talks before the greeting with 421 and closes', async () => {
    const client = await RudeClient.connect(port());
    client.write('EHLO impatient.test\r\n');
    expect(await client.until(/^421 /m)).toMatch(/^421 [^\r\n]*You talk too soon/m);
    expect(await client.closedWithin(2000)).toBe(true);
  });

  it(`closes a silent client after socketTimeoutSeconds (${TIMEOUT_SECONDS} s) with 421 4.4.2`, async () => {
    const client = await RudeClient.connect(port());
    await client.until(/^220 /m);
    const started = Date.now();
    expect(await client.closedWithin((TIMEOUT_SECONDS + 3) * 1000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_SECONDS * 1000 - 200);
    expect(client.text).toMatch(/^421 4\.4\.2 /m);
  });

  it('closes a client that trickles a command one byte at a time (a line must end within the socket timeout) with 421 4.4.2', async () => {
    const client = await RudeClient.connect(port());
    await client.until(/^220 /m);
    for (let i = 0; i < 20 && !client.isClosed; i++) {
      client.write('E');
      await pause(400);
    }
    expect(client.isClosed).toBe(true);
    expect(client.text).toMatch(/^421 4\.4\.2 [^\r\n]*not completed within 2 seconds/m);
  });

  it('closes a client that trickles DATA one byte at a time with 421 4.4.2, and queues nothing', async () => {
    const before = (await e2e.node.stores.log.search({})).items.length;
    const smtp = await inData();
    smtp.write('Subject: trickle\r\n\r\n');
    for (let i = 0; i < 20; i++) {
      smtp.write('x');
      await pause(400);
    }
    expect(await smtp.reply()).toMatch(/^421 4\.4\.2 [^\r\n]*not completed within 2 seconds/);
    await pause(300);
    expect((await e2e.node.stores.log.search({})).items.length).toBe(before);
  });
});
