// queue.inlineBodyMemoryBytes: the bytes of small messages all sessions hold in memory until their
// commit. A message under queue.inlineBodyBytes that the budget cannot lend is stored in a file, as
// a large one is, and delivered the same; the bytes of a committed or refused message are given
// back, so the next small message is kept in the database again.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteHandleForTests } from '../../bin/local-stores.js';
import type { Db } from '../../adapters/local/sqlite.js';
import { messageWithStatus, parseReply, rawMessage, rawSession, rawTransaction, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { freePort } from '../helpers/net.js';

let e2e: E2eNode;
let db: Db;

beforeAll(async () => {
  // The smarthost stays down: accepted messages wait (deferred), so where each is stored can be seen.
  const deadSmarthost = await freePort();
  e2e = await startE2eNode({
    relayHost: `127.0.0.1:${deadSmarthost}`,
    config: { queue: { inlineBodyBytes: 8192, inlineBodyMemoryBytes: 5000 }, delivery: { retrySchedule: [3600] } },
  });
  const tenant = await e2e.tenant('acme', ['acme.test'], { mailsPerMinute: 1000, mailsPerHour: 1000 });
  await e2e.user(tenant, 'alice@acme.test');
  db = sqliteHandleForTests(e2e.node.stores);
}, 30_000);

afterAll(async () => {
  await e2e?.stop();
});

const inDatabase = (id: string): boolean => db.prepare('SELECT 1 FROM message_bodies WHERE key LIKE ?').get(`messages/%/${id}.eml`) !== undefined;

function inFile(id: string): boolean {
  const root = join(e2e.dataDir, 'blobs', 'messages');
  if (!existsSync(root)) return false;
  return readdirSync(root, { recursive: true, withFileTypes: true }).some((entry) => entry.isFile() && entry.name === `${id}.eml`);
}

/** A message of about `bodyBytes` of text, on the wire (CRLF lines, the end-of-data line added). */
function wire(subject: string, bodyBytes: number, extra = ''): string {
  const line = 'The quick brown fox jumps over the lazy dog, 0123456789.\r\n';
  return rawMessage('alice@acme.test', 'bob@example.org', subject, [], extra + line.repeat(Math.ceil(bodyBytes / line.length)));
}

async function send(message: string): Promise<string> {
  const { smtp } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
  try {
    const { end } = await rawTransaction(smtp, { mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], message });
    return end ?? 'no reply';
  } finally {
    smtp.close();
  }
}

async function accepted(message: string): Promise<string> {
  const reply = await send(message);
  const id = /queued as (\S+)/.exec(reply)?.[1];
  if (!id) throw new Error(`not accepted: ${reply}`);
  await messageWithStatus(e2e.node, id, 'deferred');
  return id;
}

describe('the memory budget of small message bodies (queue.inlineBodyMemoryBytes)', () => {
  it('keeps small messages one after the other in the database: each one\'s bytes are given back at its commit', async () => {
    // Each about 3.3 KB with its Received header: two held at once would not fit 5,000 bytes.
    for (const subject of ['first', 'second', 'third']) {
      const id = await accepted(wire(subject, 3000));
      expect({ subject, inDatabase: inDatabase(id), inFile: inFile(id) }).toEqual({ subject, inDatabase: true, inFile: false });
    }
  });

  it('stores a message under inlineBodyBytes but over the budget in a file, as a large one', async () => {
    const id = await accepted(wire('over the budget', 6000));
    expect(inDatabase(id)).toBe(false);
    expect(inFile(id)).toBe(true);
  });

  it('gives back the bytes of a refused message: the next one is kept in the database', async () => {
    // Refused by the DATA checks once read whole: a From: header of a domain the tenant does not serve.
    const foreignFrom = rawMessage('alice@elsewhere.test', 'bob@example.org', 'foreign From', [], 'The quick brown fox jumps over the lazy dog.\r\n'.repeat(70));
    expect(parseReply(await send(foreignFrom))).toMatchObject({ code: 550, enhanced: '5.7.1' });
    const afterRefusal = await accepted(wire('after the refusal', 3000));
    expect(inDatabase(afterRefusal)).toBe(true);
    // Refused while it is read: a bare line feed.
    expect(parseReply(await send(wire('bare LF', 3000, 'smuggled\n.\n')))).toMatchObject({ code: 550, enhanced: '5.6.0' });
    const afterBareLf = await accepted(wire('after the bare LF', 3000));
    expect(inDatabase(afterBareLf)).toBe(true);
  });
});
