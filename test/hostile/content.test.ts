// Hostile message content, one case per test with its exact outcome: duplicate and encoded From
// headers and huge headers (answered at DATA), MIME nested hundreds deep and thousands of parts
// (quarantined by the scan stage before any parser sees them), zip bombs and archives nested past
// the scanner's limits (quarantined by a real clamd, whose limits the helper sets small: 1 MB per
// file and scan, 5 levels of recursion).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClamd, type TestDaemon } from '../helpers/clamd.js';
import { messageWithStatus, rawSession, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { nestedZip, zip } from './zip.js';

const SENDER = 'alice@acme.test';

let clamd: TestDaemon;
let e2e: E2eNode;

beforeAll(async () => {
  clamd = await startClamd();
  e2e = await startE2eNode({
    config: { scanning: { clamd: `127.0.0.1:${clamd.port}` }, policy: { reputation: { throttleScore: 10_000, rejectScore: 20_000 } } },
  });
  const tenant = await e2e.tenant('acme', ['acme.test']);
  await e2e.user(tenant, SENDER, { autoLock: false, mailsPerMinute: 0, mailsPerHour: 0 });
});

afterAll(async () => {
  await e2e?.stop();
  await clamd?.stop();
});

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** Sends `headers` (CRLF-joined, without the blank line) and `body` as SENDER to bob; resolves with the final reply. */
async function send(headers: string[], body: string): Promise<string> {
  const { smtp, auth } = await rawSession(e2e.node.ports.submission, SENDER);
  expect(auth).toMatch(/^235 /);
  expect(await smtp.command(`MAIL FROM:<${SENDER}>`)).toMatch(/^250 /);
  expect(await smtp.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
  expect(await smtp.command('DATA')).toMatch(/^354 /);
  const stuffed = body.replace(/^\./gm, '..');
  smtp.write(`${headers.join('\r\n')}\r\n\r\n${stuffed}\r\n.\r\n`);
  const reply = await smtp.reply(30_000);
  smtp.close();
  return reply;
}

const basics = (subject: string): string[] => [`Subject: ${subject}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@client.test>`, 'To: bob@example.org'];
const queuedId = (reply: string): string => /queued as (\S+)/.exec(reply)?.[1] ?? `no queue id in ${reply}`;

/** The symbol names of the quarantine verdict of the message queued by `reply`, and the symbols as JSON (their evidence). */
async function quarantined(reply: string): Promise<{ names: string[]; json: string }> {
  expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
  const held = await messageWithStatus(e2e.node, queuedId(reply), 'quarantined');
  const json = JSON.stringify(held.events.find((event) => event.event === 'quarantined')?.detail.symbols ?? []);
  return { names: json.match(/"name":"[^"]+"/g)?.map((item) => item.slice(8, -1)) ?? [], json };
}

const quarantineReasons = async (reply: string): Promise<string[]> => (await quarantined(reply)).names;

describe('From headers', () => {
  it('two From headers: 550 5.7.1 exactly one From', async () => {
    expect(await send([`From: ${SENDER}`, 'From: ceo@bank.example', ...basics('two from')], 'Hi.')).toMatch(/^550 5\.7\.1 The message must have exactly one From header; it has 2/);
  });

  it('a second From in another case ("from:"): 550 5.7.1 exactly one From', async () => {
    expect(await send([`From: ${SENDER}`, 'from: ceo@bank.example', ...basics('two from cases')], 'Hi.')).toMatch(/^550 5\.7\.1 The message must have exactly one From header; it has 2/);
  });

  it('no From header: 550 5.7.1 exactly one From', async () => {
    expect(await send(basics('no from'), 'Hi.')).toMatch(/^550 5\.7\.1 The message must have exactly one From header; it has 0/);
  });

  it('the whole From an encoded word hiding another address: 550 5.7.1 not a valid address', async () => {
    expect(await send([`From: =?UTF-8?B?${b64('ceo@bank.example')}?=`, ...basics('encoded from')], 'Hi.')).toMatch(/^550 5\.7\.1 The From header must hold a valid address/);
  });

  it('an encoded word in the angle brackets: 550 5.7.1 not a valid address', async () => {
    expect(await send([`From: Alice <=?UTF-8?B?${b64('ceo@bank.example')}?=>`, ...basics('encoded angle')], 'Hi.')).toMatch(/^550 5\.7\.1 The From header must hold a valid address/);
  });

  it('a second mailbox folded onto a continuation line: 550 5.7.1 may not send as it', async () => {
    expect(await send([`From: ${SENDER},`, ' ceo@bank.example', ...basics('folded from')], 'Hi.')).toMatch(/^550 5\.7\.1 .*(may not send with From <ceo@bank\.example>|bank\.example is not allowed)/);
  });

  it("an encoded display name that looks like an address, with the sender's own address: accepted (250) and delivered", async () => {
    const reply = await send([`From: =?UTF-8?B?${b64('ceo@bank.example')}?= <${SENDER}>`, ...basics('encoded display name')], 'Hi.');
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await messageWithStatus(e2e.node, queuedId(reply), 'delivered');
  });
});

describe('huge headers', () => {
  it('a header line over 998 octets: 550 5.6.0', async () => {
    expect(await send([`From: ${SENDER}`, `X-Long: ${'a'.repeat(2000)}`, ...basics('long header line')], 'Hi.')).toMatch(/^550 5\.6\.0 Message has a line longer than 998 octets/);
  });

  it('a header section over 256 KB of short folded lines: 550 5.6.0 header too large', async () => {
    const folded = ['X-Folded: start', ...Array.from({ length: 4000 }, () => ` ${'b'.repeat(70)}`)];
    expect(await send([`From: ${SENDER}`, ...folded, ...basics('huge header')], 'Hi.')).toMatch(/^550 5\.6\.0 Message header is too large/);
  });

  it('3000 short header fields (under 256 KB): accepted and delivered', async () => {
    const fields = Array.from({ length: 3000 }, (_, i) => `X-Field-${i}: value ${i}`);
    const reply = await send([`From: ${SENDER}`, ...fields, ...basics('many fields')], 'Hi.');
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await messageWithStatus(e2e.node, queuedId(reply), 'delivered');
  });
});

describe('MIME bombs', () => {
  it('multipart nested 300 deep: accepted, then quarantined as MIME_TOO_DEEP (maxMimeDepth 20)', async () => {
    let body = 'innermost text';
    let type = 'text/plain';
    for (let level = 300; level > 0; level--) {
      body = `--b${level}\r\nContent-Type: ${type}\r\n\r\n${body}\r\n--b${level}--`;
      type = `multipart/mixed; boundary="b${level}"`;
    }
    const reasons = await quarantineReasons(await send([`From: ${SENDER}`, 'MIME-Version: 1.0', `Content-Type: ${type}`, ...basics('deep mime')], body));
    expect(reasons).toContain('MIME_TOO_DEEP');
  });

  it('3000 parts: accepted, then quarantined as MIME_TOO_MANY_PARTS (maxMimeParts 500)', async () => {
    const parts = Array.from({ length: 3000 }, (_, i) => `--many\r\nContent-Type: text/plain\r\n\r\npart ${i}`).join('\r\n');
    const reasons = await quarantineReasons(await send([`From: ${SENDER}`, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="many"', ...basics('many parts')], `${parts}\r\n--many--`));
    expect(reasons).toContain('MIME_TOO_MANY_PARTS');
  });

  it('message/rfc822 nested 100 deep: quarantined as MIME_TOO_DEEP', async () => {
    let inner = `From: ${SENDER}\r\nSubject: innermost\r\n\r\ntext`;
    for (let level = 0; level < 100; level++) inner = `From: ${SENDER}\r\nContent-Type: message/rfc822\r\n\r\n${inner}`;
    const body = inner.slice(inner.indexOf('\r\n\r\n') + 4);
    const reasons = await quarantineReasons(await send([`From: ${SENDER}`, 'MIME-Version: 1.0', 'Content-Type: message/rfc822', ...basics('deep rfc822')], body));
    expect(reasons).toContain('MIME_TOO_DEEP');
  });
});

/** A message with `archive` as a base64 attachment. */
function withAttachment(subject: string, filename: string, archive: Buffer): { headers: string[]; body: string } {
  const encoded = archive.toString('base64').replace(/.{76}/g, '$&\r\n');
  return {
    headers: [`From: ${SENDER}`, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="att"', ...basics(subject)],
    body: `--att\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--att\r\nContent-Type: application/zip; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${encoded}\r\n--att--`,
  };
}

describe('archives over the scanner limits (real clamd)', () => {
  it('a zip bomb (20 MB of zeros in a small zip, over MaxFileSize 1 MB): quarantined, never delivered', async () => {
    const bomb = zip([{ name: 'zeros.bin', data: Buffer.alloc(20 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(100_000);
    const { headers, body } = withAttachment('zip bomb', 'bomb.zip', bomb);
    const held = await quarantined(await send(headers, body));
    expect(held.names).toContain('VIRUS_FOUND');
    expect(held.json).toMatch(/Heuristics\.Limits\.Exceeded/);
  });

  it('an archive nested 8 deep (over MaxRecursion 5): quarantined, never delivered', async () => {
    const nested = nestedZip(8, { name: 'note.txt', data: Buffer.from('hello from the bottom') });
    const { headers, body } = withAttachment('nested archives', 'nested.zip', nested);
    const held = await quarantined(await send(headers, body));
    expect(held.names).toContain('VIRUS_FOUND');
    expect(held.json).toMatch(/Heuristics\.Limits\.Exceeded/);
  });

  it('none of the quarantined messages reached the next hop', async () => {
    const subjects = (await e2e.sink.messages().catch(() => [])).map((message) => /^Subject: (.*)$/m.exec(message.data.toString('latin1'))?.[1]);
    for (const held of ['deep mime', 'many parts', 'deep rfc822', 'zip bomb', 'nested archives']) expect(subjects).not.toContain(held);
  });
});
