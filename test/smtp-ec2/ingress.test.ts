import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, startIngress, type IngressFixture } from '../helpers/ingress-fixture.js';
import { RawSmtp } from '../helpers/smtp-client.js';

const run = promisify(execFile);

let fx: IngressFixture;

beforeAll(async () => {
  fx = await startIngress({ config: { smtp: { maxMessageBytes: 200_000, maxRecipients: 5 } } });
});
afterAll(async () => {
  await fx.close();
});

async function queued(): Promise<number> {
  return (await fx.queue.depth('scan')).visible;
}

async function blobCount(): Promise<number> {
  const root = join(fx.dir, 'blobs', 'messages');
  let count = 0;
  try {
    for (const day of await readdir(root)) count += (await readdir(join(root, day))).filter((f) => f.endsWith('.eml')).length;
  } catch {
    return 0;
  }
  return count;
}

/** Opens a submission session: EHLO, STARTTLS, EHLO, AUTH PLAIN as alice. */
async function loggedIn(ingress: IngressFixture = fx): Promise<RawSmtp> {
  const { client } = await RawSmtp.open(ingress.ports.submission);
  await client.command('EHLO client.test');
  await client.startTls();
  await client.command('EHLO client.test');
  expect(await client.authPlain('alice@acme.test', PASSWORD)).toMatch(/^235 /);
  return client;
}

function drain(fxQueue: IngressFixture['queue']): Promise<void> {
  return fxQueue.receive('scan', { max: 100, visibilityTimeoutSeconds: 60 }).then(async (messages) => {
    for (const message of messages) await fxQueue.delete('scan', message.receiptHandle);
  });
}

describe('submission port', () => {
  it('does not advertise AUTH before STARTTLS and refuses AUTH in plaintext with 538', async () => {
    const { client, greeting } = await RawSmtp.open(fx.ports.submission);
    expect(greeting).toMatch(/^220 relay\.test/);
    const ehlo = await client.command('EHLO client.test');
    expect(ehlo).toContain('STARTTLS');
    expect(ehlo).not.toMatch(/AUTH/);
    expect(ehlo).toMatch(/SIZE 200000/);
    expect(await client.authPlain('alice@acme.test', PASSWORD)).toMatch(/^538 /);
    await client.startTls();
    const secureEhlo = await client.command('EHLO client.test');
    expect(secureEhlo).toMatch(/AUTH PLAIN LOGIN/);
    expect(secureEhlo).not.toContain('STARTTLS');
    client.close();
  });

  it('answers an unknown user and a wrong password alike, and drops the connection after 3 failures', async () => {
    const { client } = await RawSmtp.open(fx.ports.submission);
    await client.command('EHLO client.test');
    await client.startTls();
    await client.command('EHLO client.test');
    const wrong = await client.authPlain('alice@acme.test', 'not the password');
    const unknown = await client.authPlain('nobody@acme.test', PASSWORD);
    expect(wrong).toBe('535 5.7.8 Authentication credentials invalid');
    expect(unknown).toBe(wrong);
    expect(await client.authPlain('alice@acme.test', 'still wrong')).toMatch(/^421 4\.7\.0 /);
    expect(await client.closedByServer(2000), 'the server hangs up after the 421').toBe(true);
  });

  it('refuses to relay for an unauthenticated client with 530 5.7.0', async () => {
    const { client } = await RawSmtp.open(fx.ports.submission);
    await client.command('EHLO client.test');
    expect(await client.command('MAIL FROM:<alice@acme.test>')).toMatch(/^530 5\.7\.0 Authentication required/);
    client.close();
  });

  it('accepts a message from nodemailer (STARTTLS + AUTH LOGIN), stores it durably and queues it for scanning', async () => {
    await drain(fx.queue);
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: fx.ports.submission,
      secure: false,
      requireTLS: true,
      auth: { user: 'alice@acme.test', pass: PASSWORD, method: 'LOGIN' },
      tls: { rejectUnauthorized: false },
    });
    const info = await transport.sendMail({
      from: 'alice@acme.test',
      to: ['bob@example.org', 'carol@example.net'],
      subject: 'Hello',
      text: 'First message\r\n.\r\nwith a dot line',
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{19}$/);
    const id = /queued as (\S+)/.exec(info.response)?.[1] ?? '';
    const [message] = await fx.queue.receive('scan', { max: 10, visibilityTimeoutSeconds: 60 });
    const envelope = JSON.parse(message?.body ?? '{}') as { messageId: string; mailFrom: string; rcptTo: string[]; blobKey: string; identity: string };
    expect(envelope).toMatchObject({ messageId: id, mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org', 'carol@example.net'], identity: 'alice@acme.test' });
    const raw = (await fx.blobs.get(envelope.blobKey)).toString();
    expect(raw).toMatch(/^Received: from \S+ \(\[127\.0\.0\.1\]\)\r\n\tby relay\.test \(Outpost\) with ESMTPSA id /);
    expect(raw).toContain(`with ESMTPSA id ${id}`);
    expect(raw).toContain('\r\n.\r\nwith a dot line');
    const history = await fx.log.get(id);
    expect(history?.message.status).toBe('queued');
    expect(history?.events.map((e) => e.event)).toEqual(['received']);
  });

  it('refuses SIZE= over the limit at MAIL FROM with 552 5.3.4', async () => {
    const client = await loggedIn();
    expect(await client.command('MAIL FROM:<alice@acme.test> SIZE=200001')).toMatch(/^552 5\.3\.4 /);
    expect(await client.command('MAIL FROM:<alice@acme.test> SIZE=1000')).toMatch(/^250 /);
    client.close();
  });

  it('refuses an oversized DATA with 552 5.3.4 after the data, and keeps nothing', async () => {
    await drain(fx.queue);
    const before = await blobCount();
    const client = await loggedIn();
    await client.command('MAIL FROM:<alice@acme.test>');
    await client.command('RCPT TO:<bob@example.org>');
    expect(await client.command('DATA')).toMatch(/^354 /);
    const line = 'x'.repeat(998) + '\r\n';
    client.write('Subject: big\r\n\r\n' + line.repeat(250) + '.\r\n');
    expect(await client.reply()).toMatch(/^552 5\.3\.4 /);
    expect(await queued()).toBe(0);
    expect(await blobCount()).toBe(before);
    client.close();
  });

  it('accepts lines of 998 octets and refuses a longer one with 550 5.6.0 (RFC 5322; keeps DKIM intact downstream)', async () => {
    await drain(fx.queue);
    for (const [length, expected] of [[998, /^250 2\.0\.0 /], [999, /^550 5\.6\.0 Message has a line longer than 998 octets/]] as const) {
      const client = await loggedIn();
      await client.command('MAIL FROM:<alice@acme.test>');
      await client.command('RCPT TO:<bob@example.org>');
      await client.command('DATA');
      client.write(`Subject: long\r\n\r\n${'y'.repeat(length)}\r\n.\r\n`);
      expect(await client.reply()).toMatch(expected);
      client.close();
    }
    expect(await queued()).toBe(1);
  });

  it('answers 452 4.5.3 past the per-message recipient limit', async () => {
    const client = await loggedIn();
    await client.command('MAIL FROM:<alice@acme.test>');
    for (let i = 0; i < 5; i++) expect(await client.command(`RCPT TO:<r${i}@example.org>`)).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<r5@example.org>')).toMatch(/^452 4\.5\.3 /);
    client.close();
  });

  /** Sends one message to `rcpts` (each answered 250) and returns the recipients of the queued envelope. */
  async function queuedRecipients(rcpts: string[]): Promise<string[]> {
    await drain(fx.queue);
    const client = await loggedIn();
    await client.command('MAIL FROM:<alice@acme.test>');
    for (const rcpt of rcpts) expect(await client.command(`RCPT TO:<${rcpt}>`)).toMatch(/^250 /);
    expect(await client.command('DATA')).toMatch(/^354 /);
    client.write('From: alice@acme.test\r\nSubject: recipients\r\n\r\nHi.\r\n.\r\n');
    expect(await client.reply()).toMatch(/^250 2\.0\.0 /);
    client.close();
    const [message] = await fx.queue.receive('scan', { max: 10, visibilityTimeoutSeconds: 60 });
    return (JSON.parse(message?.body ?? '{}') as { rcptTo: string[] }).rcptTo;
  }

  it('queues a recipient given twice (in any case) once', async () => {
    expect(await queuedRecipients(['bob@example.org', 'BOB@example.org', 'bob@example.org'])).toEqual(['bob@example.org']);
  });

  it('accepts a recipient in an internationalised domain and queues it in ASCII (smtp-server hands it over in Unicode)', async () => {
    expect(await queuedRecipients(['hans@xn--bcher-kva.example'])).toEqual(['hans@xn--bcher-kva.example']);
  });

  it('bounds command length', async () => {
    const client = await loggedIn();
    const answer = await client.command(`MAIL FROM:<${'a'.repeat(5000)}@acme.test>`);
    expect(answer).toMatch(/^421 .*Command line too long/);
    client.close();
  });

  for (const [name, bytes] of [
    ['bare LF', 'MAIL FROM:<alice@acme.test>\nRSET\r\n'],
    ['bare CR', 'NOOP\rMAIL FROM:<alice@acme.test>\r\n'],
  ] as const) {
    it(`ends the session with 421 on a command line with a ${name}`, async () => {
      const client = await loggedIn();
      client.write(bytes);
      expect(await client.reply()).toMatch(/^421 .*bare LF or CR in a command/);
      expect(await client.closedByServer(2000), 'the server hangs up after the 421').toBe(true);
    });
  }

  const smuggling: Array<[string, string]> = [
    ['bare LF line ending', 'Subject: a\r\n\r\nline one\nline two\r\n'],
    ['bare CR line ending', 'Subject: a\r\n\r\nline one\rline two\r\n'],
    ['\\n.\\n smuggled end of data', 'Subject: a\r\n\r\nbody\n.\nMAIL FROM:<evil@acme.test>\r\n'],
    ['\\r\\n.\\n smuggled end of data', 'Subject: a\r\n\r\nbody\r\n.\nRCPT TO:<x@example.org>\r\n'],
    ['\\n.\\r\\n smuggled end of data', 'Subject: a\r\n\r\nbody\n.\r\nDATA\r\n'],
    ['\\r.\\r smuggled end of data', 'Subject: a\r\n\r\nbody\r.\rQUIT\r\n'],
  ];
  for (const [name, body] of smuggling) {
    it(`refuses a message with a ${name} (550 5.6.0) and stores nothing`, async () => {
      await drain(fx.queue);
      const before = await blobCount();
      const client = await loggedIn();
      await client.command('MAIL FROM:<alice@acme.test>');
      await client.command('RCPT TO:<bob@example.org>');
      await client.command('DATA');
      client.write(body + '.\r\n');
      expect(await client.reply()).toMatch(/^550 5\.6\.0 /);
      // The session goes on as one session: no second transaction was smuggled in.
      expect(await client.command('NOOP')).toMatch(/^250 /);
      expect(await queued()).toBe(0);
      expect(await blobCount()).toBe(before);
      client.close();
    });
  }

  it('accepts mail from an IP user without AUTH and refuses other addresses', async () => {
    await drain(fx.queue);
    const { client } = await RawSmtp.open(fx.ports.submission);
    await client.command('EHLO mx.client.test');
    expect(await client.command('MAIL FROM:<app@acme.test>')).toMatch(/^530 /);
    const user = await fx.configStore.createUser({ tenantId: fx.tenantId, kind: 'ip', identity: '127.0.0.0/8', domain: null, passwordHash: null });
    expect(await client.command('MAIL FROM:<app@acme.test>')).toMatch(/^250 /);
    expect(await client.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
    await client.command('DATA');
    client.write('From: app@acme.test\r\nSubject: smarthost\r\n\r\nhello\r\n.\r\n');
    expect(await client.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await fx.configStore.deleteUser(user.id);
    expect(await queued()).toBe(1);
    client.close();
  });

  it("works an IP user's settings out again when its tenant changed, though the user is still the one it looked up", async () => {
    // The ingress keeps a found IP user for a few seconds, and reuses a user's effective settings
    // while the user and its tenant are the objects it had: here the tenant is a new one.
    const { client } = await RawSmtp.open(fx.ports.submission);
    await client.command('EHLO mx.client.test');
    const user = await fx.configStore.createUser({ tenantId: fx.tenantId, kind: 'ip', identity: '127.0.0.0/8', domain: null, passwordHash: null });
    try {
      expect(await client.command('MAIL FROM:<app@acme.test> SIZE=5000')).toMatch(/^250 /);
      expect(await client.command('RSET')).toMatch(/^250 /);
      await fx.configStore.updateTenant(fx.tenantId, { settings: { maxMessageBytes: 1000 } });
      expect(await client.command('MAIL FROM:<app@acme.test> SIZE=5000')).toMatch(/^552 5\.3\.4 /);
    } finally {
      await fx.configStore.updateTenant(fx.tenantId, { settings: {} });
      await fx.configStore.deleteUser(user.id);
      client.close();
    }
  });
});

describe('implicit TLS port', () => {
  it('speaks TLS from the first byte and accepts AUTH at once', async () => {
    const { client, greeting } = await RawSmtp.open(fx.ports.submissions, { tls: true });
    expect(greeting).toMatch(/^220 /);
    const ehlo = await client.command('EHLO client.test');
    expect(ehlo).toMatch(/AUTH PLAIN LOGIN/);
    expect(await client.authPlain('acme.test', PASSWORD)).toMatch(/^235 /);
    client.close();
  });
});

describe('other real clients', () => {
  it('swaks submits with STARTTLS and AUTH PLAIN as a domain user', async () => {
    await drain(fx.queue);
    const { stdout } = await run('swaks', [
      '--server', '127.0.0.1', '--port', String(fx.ports.submission), '--tls',
      '--auth', 'PLAIN', '--auth-user', 'acme.test', '--auth-password', PASSWORD,
      '--from', 'news@acme.test', '--to', 'dave@example.org', '--header', 'Subject: from swaks',
    ]);
    expect(stdout).toMatch(/<~\s+250 2\.0\.0 Ok: queued as /);
    expect(await queued()).toBe(1);
  });

  it('Python smtplib submits with STARTTLS and AUTH LOGIN and AUTH PLAIN', async () => {
    await drain(fx.queue);
    const script = `
import smtplib, ssl, sys
port = int(sys.argv[1])
for mech in ("LOGIN", "PLAIN"):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("py.test")
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("py.test")
    s.user, s.password = "alice@acme.test", sys.argv[2]
    code, resp = s.auth(mech, getattr(s, "auth_" + mech.lower()))
    print(mech, code)
    s.sendmail("alice@acme.test", ["erin@example.org"], "From: alice@acme.test\\r\\nSubject: py\\r\\n\\r\\nhello\\r\\n")
    s.quit()
`;
    const { stdout } = await run('/usr/bin/python3', ['-c', script, String(fx.ports.submission), PASSWORD]);
    expect(stdout).toContain('LOGIN 235');
    expect(stdout).toContain('PLAIN 235');
    expect(await queued()).toBe(2);
  });
});

describe('after the queue commit', () => {
  it('answers 250 even when counter bookkeeping fails: the message is queued, a 451 would make the client send it twice', async () => {
    const failing = await startIngress({
      policy: {
        afterAccept: () => Promise.reject(new Error('counter store unavailable')),
      },
    });
    try {
      const client = await loggedIn(failing);
      await client.command('MAIL FROM:<alice@acme.test>');
      expect(await client.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
      expect(await client.command('DATA')).toMatch(/^354 /);
      client.write('From: alice@acme.test\r\nSubject: bookkeeping\r\n\r\nHi.\r\n.\r\n');
      expect(await client.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect((await failing.queue.depth('scan')).visible).toBe(1);
      client.close();
    } finally {
      await failing.close();
    }
  });
});

describe('before the queue commit', () => {
  it('a failing queue gets 451 4.3.0 and leaves neither the blob nor a "queued" log record', async () => {
    const failing = await startIngress();
    try {
      failing.queue.send = () => Promise.reject(new Error('database is locked'));
      const client = await loggedIn(failing);
      await client.command('MAIL FROM:<alice@acme.test>');
      expect(await client.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
      expect(await client.command('DATA')).toMatch(/^354 /);
      client.write('From: alice@acme.test\r\nSubject: unqueued\r\n\r\nHi.\r\n.\r\n');
      expect(await client.reply()).toMatch(/^451 4\.3\.0 /);
      client.close();
      const { items } = await failing.log.search({});
      await expect.poll(async () => (await failing.log.get(items[0]?.id ?? ''))?.message.status).toBe('refused');
      await expect.poll(() => readdir(join(failing.dir, 'blobs', 'messages'), { recursive: true }).then((files) => files.filter((f) => f.endsWith('.eml')))).toEqual([]);
    } finally {
      await failing.close();
    }
  });
});

describe('a client that leaves during RCPT', () => {
  it('gets the reservation its RCPT made released once the checks finish', async () => {
    const released: string[][] = [];
    let checked = 0;
    const slow = await startIngress({
      policy: {
        rcptTo: [{ name: 'slow-reserve', check: () => new Promise((resolve) => setTimeout(() => { checked += 1; resolve({ action: 'continue', symbols: [] }); }, 300)) }],
        releaseTransaction: (_facts, rcpts) => {
          released.push(rcpts);
          return Promise.resolve();
        },
      },
    });
    try {
      const client = await loggedIn(slow);
      expect(await client.command('MAIL FROM:<alice@acme.test>')).toMatch(/^250 /);
      client.write('RCPT TO:<bob@example.org>\r\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
      client.close();
      await expect.poll(() => checked).toBe(1);
      await expect.poll(() => released).toEqual([['bob@example.org']]);
      expect(slow.ingress.activeSessions).toBe(0);
    } finally {
      await slow.close();
    }
  });
});
