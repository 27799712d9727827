// No client can end the process: the real `outpost start` in a child process, and clients that
// reset their TCP connection (RST), send garbage or fall silent at every stage of every listener:
// before the greeting, in EHLO, in the TLS handshake (STARTTLS and implicit TLS), in AUTH, in
// DATA, and on the HTTP port. After each, the process must still run, must not have logged an
// unhandled rejection or a failed session, and must relay an ordinary message.
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARTIAL_CLIENT_HELLO, pause, RudeClient } from './rude-client.js';
import { PASSWORD, startRelayUnderTest, USER, type RelayUnderTest } from './relay-under-test.js';

const runFile = promisify(execFile);

let relay: RelayUnderTest;
let round = 0;

beforeAll(async () => {
  // The bounce-listener cases send untagged bounces: their subject is the session, not BATV
  // (test/e2e/bounce-attacks.test.ts covers tags), so validation is off here.
  relay = await startRelayUnderTest({ defaults: { bounceValidation: false }, smtp: { greetingDelayMs: 100 } });
});

afterAll(async () => {
  await relay?.stop();
});

const authPlain = `AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}\r\n`;

/** Submission port: greeting, EHLO, STARTTLS, TLS, EHLO. */
async function submissionInTls(): Promise<RudeClient> {
  const client = await RudeClient.connect(relay.ports.submission);
  await client.until(/^220 /m);
  client.write('EHLO rude.test\r\n');
  await client.until(/^250 /m);
  client.write('STARTTLS\r\n');
  await client.until(/^220 2\.0\.0/m);
  await client.tls();
  client.write('EHLO rude.test\r\n');
  await client.until(/^250 /m);
  return client;
}

/** Implicit TLS port: handshake, greeting, EHLO. */
async function submissionsSession(): Promise<RudeClient> {
  const client = await RudeClient.connect(relay.ports.submissions);
  await client.tls();
  await client.until(/^220 /m);
  client.write('EHLO rude.test\r\n');
  await client.until(/^250 /m);
  return client;
}

/** Up to the middle of a message: AUTH, MAIL, RCPT, DATA, half a message. */
async function halfwayThroughData(client: RudeClient, subject: string): Promise<void> {
  client.write(authPlain);
  await client.until(/^235 /m);
  client.write(`MAIL FROM:<${USER}>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n`);
  expect(await client.until(/^354 /m)).toMatch(/^354 /m);
  client.write(`From: ${USER}\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n\r\nThe first half of a message`);
  await pause(100);
}

/** The process survived the rude client and relays an ordinary message; the cut message never arrives. */
async function stillServing(cutSubject?: string): Promise<void> {
  round += 1;
  await relay.proveHealthy(`healthy after rude client ${round}`);
  if (cutSubject) {
    const arrived = (await relay.sink.messages()).some((m) => m.data.toString('latin1').includes(`Subject: ${cutSubject}\n`));
    expect(arrived, 'a message cut off by a reset must not be delivered').toBe(false);
  }
}

describe('submission port (STARTTLS): resets and garbage at every stage', () => {
  it('survives a reset before the greeting', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    client.reset();
    await stillServing();
  });

  it('survives a reset right after the greeting', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    client.reset();
    await stillServing();
  });

  it('answers an early talker with 421 and survives', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    client.write('EHLO too.early\r\n');
    expect(await client.until(/^421 /m)).toMatch(/^421 .*talk too soon/m);
    await stillServing();
  });

  it('survives a reset in the middle of an EHLO line', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    client.write('EHLO half-a-na');
    await pause(50);
    client.reset();
    await stillServing();
  });

  it('survives a reset during the STARTTLS handshake', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    client.write('EHLO rude.test\r\nSTARTTLS\r\n');
    await client.until(/^220 2\.0\.0/m);
    await client.resetInTlsHandshake();
    await stillServing();
  });

  it('survives half a ClientHello then a reset after STARTTLS', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    client.write('EHLO rude.test\r\nSTARTTLS\r\n');
    await client.until(/^220 2\.0\.0/m);
    client.write(PARTIAL_CLIENT_HELLO);
    await pause(50);
    client.reset();
    await stillServing();
  });

  it('closes a connection that sends garbage instead of a TLS handshake after STARTTLS', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    client.write('EHLO rude.test\r\nSTARTTLS\r\n');
    await client.until(/^220 2\.0\.0/m);
    client.write('GET / HTTP/1.0\r\n\r\n' + 'garbage'.repeat(100));
    expect(await client.closedWithin(5000)).toBe(true);
    await stillServing();
  });

  it('answers binary garbage before EHLO with an error, and survives a reset after it', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    client.write(Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a]));
    // The garbage holds a NUL: the command is refused as such (550 5.6.0) and never run.
    expect(await client.until(/^[45]\d\d /m)).toMatch(/^(500|501|502|421|550) /m);
    client.reset();
    await stillServing();
  });

  it('survives a reset in AUTH LOGIN (after the username challenge)', async () => {
    const client = await submissionInTls();
    client.write('AUTH LOGIN\r\n');
    await client.until(/^334 /m);
    client.reset();
    await stillServing();
  });

  it('survives a reset after a refused RCPT (the client gives up mid-transaction)', async () => {
    const client = await submissionInTls();
    client.write(authPlain);
    await client.until(/^235 /m);
    client.write(`MAIL FROM:<${USER}>\r\nRCPT TO:<nobody@nowhere.invalid>\r\n`);
    await client.until(/^5\d\d /m);
    client.reset();
    await stillServing();
  });

  it("survives Python smtplib closing its socket after a refused RCPT (STARTTLS, login, MAIL, RCPT refused, close)", async () => {
    const script = [
      'import smtplib, ssl, sys',
      'port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]',
      's = smtplib.SMTP("127.0.0.1", port, timeout=10)',
      's.starttls(context=ssl._create_unverified_context())',
      's.login(user, password)',
      's.mail(user)',
      'code, _ = s.rcpt("nobody@nowhere.invalid")',
      'print(code)',
      's.sock.close()',
    ].join('\n');
    const { stdout } = await runFile('/usr/bin/python3', ['-c', script, String(relay.ports.submission), USER, PASSWORD]);
    expect(stdout.trim()).toMatch(/^5\d\d$/);
    await stillServing();
  });

  it('survives a reset in the middle of DATA and delivers nothing of the cut message', async () => {
    const client = await submissionInTls();
    await halfwayThroughData(client, 'cut by a reset on 587');
    client.reset();
    await pause(300);
    await stillServing('cut by a reset on 587');
  });

  it('survives a reset right after the 354 of DATA (before the message store has the stream)', async () => {
    for (let i = 0; i < 5; i++) {
      const client = await submissionInTls();
      client.write(authPlain);
      await client.until(/^235 /m);
      client.write(`MAIL FROM:<${USER}>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n`);
      await client.until(/^354 /m);
      client.write('Subject: x\r\n');
      client.reset();
    }
    await pause(300);
    await stillServing();
  });

  it('closes a silent client after socketTimeoutSeconds (2 s here) and survives', async () => {
    const client = await RudeClient.connect(relay.ports.submission);
    await client.until(/^220 /m);
    expect(await client.closedWithin(6000)).toBe(true);
    expect(client.text).toMatch(/^421 /m);
    await stillServing();
  });
});

describe('submissions port (implicit TLS): resets and garbage at every stage', () => {
  it('survives a reset before the ClientHello', async () => {
    const client = await RudeClient.connect(relay.ports.submissions);
    client.reset();
    await stillServing();
  });

  it('survives half a ClientHello then a reset (the packet that used to end the process)', async () => {
    const client = await RudeClient.connect(relay.ports.submissions);
    client.write(PARTIAL_CLIENT_HELLO);
    await pause(50);
    client.reset();
    await stillServing();
  });

  it('survives a reset in the middle of the TLS handshake', async () => {
    const client = await RudeClient.connect(relay.ports.submissions);
    await client.resetInTlsHandshake();
    await stillServing();
  });

  it('closes a connection that speaks plaintext SMTP to the TLS port', async () => {
    const client = await RudeClient.connect(relay.ports.submissions);
    client.write('EHLO plain.text\r\n');
    expect(await client.closedWithin(5000)).toBe(true);
    await stillServing();
  });

  it('closes a client that never starts the TLS handshake', async () => {
    const client = await RudeClient.connect(relay.ports.submissions);
    expect(await client.closedWithin(6000)).toBe(true);
    await stillServing();
  });

  it('survives a reset in EHLO inside TLS', async () => {
    const client = await RudeClient.connect(relay.ports.submissions);
    await client.tls();
    await client.until(/^220 /m);
    client.write('EHLO half');
    client.reset();
    await stillServing();
  });

  it('survives a reset in AUTH PLAIN (after the empty challenge)', async () => {
    const client = await submissionsSession();
    client.write('AUTH PLAIN\r\n');
    await client.until(/^334/m);
    client.reset();
    await stillServing();
  });

  it('survives a reset in the middle of DATA and delivers nothing of the cut message', async () => {
    const client = await submissionsSession();
    await halfwayThroughData(client, 'cut by a reset on 465');
    client.reset();
    await pause(300);
    await stillServing('cut by a reset on 465');
  });
});

describe('bounce listener: resets and garbage', () => {
  it('survives a reset before the greeting', async () => {
    const client = await RudeClient.connect(relay.ports.bounce);
    client.reset();
    await stillServing();
  });

  it('survives a reset in EHLO', async () => {
    const client = await RudeClient.connect(relay.ports.bounce);
    await client.until(/^220 /m);
    client.write('EHLO mx.remote');
    client.reset();
    await stillServing();
  });

  it('survives a reset during the STARTTLS handshake', async () => {
    const client = await RudeClient.connect(relay.ports.bounce);
    await client.until(/^220 /m);
    client.write('EHLO mx.remote\r\nSTARTTLS\r\n');
    await client.until(/^220 2\.0\.0/m);
    await client.resetInTlsHandshake();
    await stillServing();
  });

  it('survives a reset after MAIL FROM and after DATA was refused', async () => {
    const client = await RudeClient.connect(relay.ports.bounce);
    await client.until(/^220 /m);
    client.write('EHLO mx.remote\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@acme.test>\r\nDATA\r\n');
    await client.until(/^5\d\d [^\r\n]*\r\n[\s\S]*^5\d\d /m);
    client.reset();
    await stillServing();
  });

  it('survives resets in the middle of a bounce in DATA (right after the 354, and halfway)', async () => {
    for (const cut of ['', 'Subject: cut bounce\r\n\r\nThe first half of a DSN']) {
      const client = await RudeClient.connect(relay.ports.bounce);
      await client.until(/^220 /m);
      client.write(`EHLO mx.remote\r\nMAIL FROM:<>\r\nRCPT TO:<${USER}>\r\nDATA\r\n`);
      expect(await client.until(/^354 /m)).toMatch(/^354 /m);
      client.write(cut);
      await pause(cut ? 100 : 0);
      client.reset();
    }
    await pause(300);
    await stillServing();
  });

  it('answers garbage and survives a reset after it', async () => {
    const client = await RudeClient.connect(relay.ports.bounce);
    await client.until(/^220 /m);
    client.write(Buffer.from('\x16\x03\x01garbage\xff\xfe\r\n', 'latin1'));
    await client.until(/^[45]\d\d /m);
    client.reset();
    await stillServing();
  });
});

describe('HTTP port: resets and garbage', () => {
  const rawHttp = async (payload: string, reset: boolean): Promise<void> => {
    const socket = connect({ port: relay.ports.http, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      socket.once('connect', () => resolve());
      socket.once('error', () => resolve());
    });
    socket.write(payload);
    await pause(50);
    if (reset) socket.resetAndDestroy();
    else socket.end();
  };

  it('survives a reset in the middle of a request line', async () => {
    await rawHttp('GET /v1/tena', true);
    await stillServing();
  });

  it('survives a reset in the middle of the headers of a POST with a body announced', async () => {
    await rawHttp('POST /v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nAuthorization: Bearer x', true);
    await stillServing();
  });

  it('survives binary garbage', async () => {
    await rawHttp('\x00\x01\x02\xff\r\n\r\n', false);
    await stillServing();
    expect((await fetch(`http://127.0.0.1:${relay.ports.http}/healthz`)).status).toBe(200);
  });
});
