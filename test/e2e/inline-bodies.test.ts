// Where the single node keeps an accepted message: up to queue.inlineBodyBytes in the database,
// committed with its queue entry (no file), above that in a file as before. Both are delivered to
// postfix's smtp-sink byte for byte, and both are deleted once delivered; a refused message, or a
// client that leaves in the middle of DATA, leaves neither a row nor a file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteHandleForTests } from '../../bin/local-stores.js';
import type { Db } from '../../adapters/local/sqlite.js';
import { headersOf, messageWithStatus, parseReply, rawMessage, rawSession, rawTransaction, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { freePort, waitFor } from '../helpers/net.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';

const INLINE_BYTES = 8192;

let e2e: E2eNode;
let sink: SmtpSink | undefined;
let sinkPort: number;
let db: Db;
let tenantId: string;

beforeAll(async () => {
  // The smarthost is down at first: accepted messages wait (deferred), so what the node stored
  // for them can be looked at before delivery.
  sinkPort = await freePort();
  e2e = await startE2eNode({ relayHost: `127.0.0.1:${sinkPort}`, config: { queue: { inlineBodyBytes: INLINE_BYTES }, delivery: { retrySchedule: [3600] } } });
  const tenant = await e2e.tenant('acme', ['acme.test'], { mailsPerMinute: 1000, mailsPerHour: 1000 });
  tenantId = tenant.id;
  await e2e.user(tenant, 'alice@acme.test');
  // Spam is held (quarantined), and sam stays free to send.
  await e2e.user(tenant, 'sam@acme.test', { blockSpam: true, autoLock: false });
  db = sqliteHandleForTests(e2e.node.stores);
}, 30_000);

afterAll(async () => {
  await e2e?.stop();
  await sink?.stop();
});

function bodyRow(id: string): { key: string; body: Buffer } | undefined {
  return db.prepare('SELECT key, body FROM message_bodies WHERE key LIKE ?').get(`messages/%/${id}.eml`) as { key: string; body: Buffer } | undefined;
}

function bodyRows(): number {
  return (db.prepare('SELECT COUNT(*) AS n FROM message_bodies').get() as { n: number }).n;
}

function messageFiles(): string[] {
  const root = join(e2e.dataDir, 'blobs', 'messages');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name)).sort();
}

/** Dot-stuffs a message (CRLF lines) for the wire and adds the end-of-data line. */
function onTheWire(message: string): string {
  return message.replace(/^\./gm, '..') + '.\r\n';
}

/** One transaction as `from` (alice by default); the final reply. */
async function send(wire: string, from = 'alice@acme.test'): Promise<string> {
  const { smtp } = await rawSession(e2e.node.ports.submission, from);
  try {
    const { end } = await rawTransaction(smtp, { mailFrom: from, rcptTo: ['bob@example.org'], message: wire });
    return end ?? 'no reply';
  } finally {
    smtp.close();
  }
}

function queueId(reply: string): string {
  const id = /queued as (\S+)/.exec(reply)?.[1];
  if (!id) throw new Error(`not accepted: ${reply}`);
  return id;
}

/** A message as the client means it (CRLF lines, a line that begins with a dot), `bodyBytes` of text long. */
function message(subject: string, bodyBytes: number): string {
  const line = 'The quick brown fox jumps over the lazy dog, 0123456789.\r\n';
  const text = `.a line that begins with a dot\r\n${line.repeat(Math.ceil(bodyBytes / line.length))}`;
  return rawMessage('alice@acme.test', 'bob@example.org', subject, [], text).replace(/\r\n\.\r\n$/, '\r\n');
}

const sent = new Map<string, string>();

describe('message bodies in the database (queue.inlineBodyBytes)', () => {
  it('commits a small message with its queue entry: a row, and no file', async () => {
    const original = message('small one', 2048);
    const id = queueId(await send(onTheWire(original)));
    sent.set(id, original);
    await messageWithStatus(e2e.node, id, 'deferred');
    const row = bodyRow(id);
    expect(row).toBeDefined();
    // The Received header Outpost adds, then the message exactly as the client meant it (unstuffed).
    expect(row?.body.toString('latin1')).toMatch(new RegExp(`^Received: from client\\.test .*\\r\\n\\tby relay\\.test \\(Outpost\\) with ESMTPSA id ${id};`));
    expect(row?.body.subarray(row.body.length - original.length).toString('latin1')).toBe(original);
    expect(messageFiles()).toEqual([]);
  });

  it('stores a message over the threshold in a file, as before, with no row', async () => {
    const original = message('large one', 300 * 1024);
    const id = queueId(await send(onTheWire(original)));
    sent.set(id, original);
    await messageWithStatus(e2e.node, id, 'deferred');
    expect(bodyRow(id)).toBeUndefined();
    const files = messageFiles();
    expect(files.map((file) => file.split('/').at(-1))).toEqual([`${id}.eml`]);
    const stored = readFileSync(files[0] ?? '');
    expect(stored.subarray(stored.length - original.length).toString('latin1')).toBe(original);
  });

  it('leaves no row and no file for a refused message or a client that leaves during DATA', async () => {
    const rowsBefore = bodyRows();
    const filesBefore = messageFiles();
    // A bare LF, small (would have been inline) and large (would have gone to a file).
    for (const size of [100, 50 * 1024]) {
      const reply = await send(onTheWire(message(`bare LF ${size}`, size).replace('\r\n\r\n', '\r\n\r\nsmuggled\n.\n')));
      expect(parseReply(reply)).toMatchObject({ code: 550, enhanced: '5.6.0' });
    }
    // A NUL byte; and one far into a large message, after its first 8 KB had gone to the file.
    expect(parseReply(await send(onTheWire(message('nul', 100).replace('lazy', 'la\x00zy'))))).toMatchObject({ code: 550, enhanced: '5.6.0' });
    const late = message('late nul', 50 * 1024);
    const at = late.indexOf('lazy', 40 * 1024);
    expect(parseReply(await send(onTheWire(`${late.slice(0, at)}la\x00zy${late.slice(at + 4)}`)))).toMatchObject({ code: 550, enhanced: '5.6.0' });
    // A client that goes away in the middle of DATA, small and large.
    for (const size of [1000, 50 * 1024]) {
      const { smtp } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
      expect(await smtp.command('MAIL FROM:<alice@acme.test>')).toMatch(/^250 /);
      expect(await smtp.command('RCPT TO:<bob@example.org>')).toMatch(/^250 /);
      expect(await smtp.command('DATA')).toMatch(/^354 /);
      smtp.write(message(`gone ${size}`, size));
      await new Promise((resolve) => setTimeout(resolve, 200));
      smtp.close();
    }
    // Clean-up after a refusal may finish just after the reply.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(bodyRows()).toBe(rowsBefore);
    expect(messageFiles()).toEqual(filesBefore);
  });

  it('shows a quarantined inline message to the API, and deleting it there deletes its row', async () => {
    const gtube = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
    const wire = onTheWire(rawMessage('sam@acme.test', 'bob@example.org', 'held offer', [], `Cheap offer\r\n${gtube}`).replace(/\r\n\.\r\n$/, '\r\n'));
    const id = queueId(await send(wire, 'sam@acme.test'));
    await messageWithStatus(e2e.node, id, 'quarantined');
    expect(bodyRow(id)).toBeDefined();
    const api = (method: string) => fetch(`http://127.0.0.1:${e2e.node.ports.http}/v1/tenants/${tenantId}/quarantine/${id}`, { method, headers: { authorization: `Bearer ${e2e.node.operatorToken.token}` } });
    const detail = await api('GET');
    expect(detail.status).toBe(200);
    const { headers } = (await detail.json()) as { headers: Array<{ name: string; value: string }> };
    expect(headers).toContainEqual({ name: 'Subject', value: 'held offer' });
    expect((await api('DELETE')).status).toBeLessThan(300);
    expect(bodyRow(id)).toBeUndefined();
  });

  it('delivers both to smtp-sink byte for byte, and deletes the row and the file once delivered', async () => {
    sink = await startSmtpSink({ port: sinkPort });
    e2e.clock.advance(2 * 3600_000);
    await sink.waitForMessages(sent.size, 30_000);
    for (const id of sent.keys()) await messageWithStatus(e2e.node, id, 'delivered');
    // Read once every delivery has its 250: smtp-sink has written each dump whole by then.
    const received = await sink.messages();
    for (const [id, original] of sent) {
      const delivered = received.find((mail) => headersOf(mail.data).get('x-outpost-queue-id')?.[0] === id);
      // smtp-sink writes LF line endings and undoes the dot-stuffing of the wire.
      const data = delivered?.data.toString('latin1') ?? '';
      expect(data.endsWith(original.replace(/\r\n/g, '\n')), id).toBe(true);
      expect(data).toContain(`with ESMTPSA id ${id};`);
    }
    await waitFor('bodies and files of delivered messages to be deleted', async () => bodyRows() === 0 && messageFiles().length === 0, 5000);
  }, 60_000);
});
