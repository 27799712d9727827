// Damage on disk at start-up: a queue row whose body is garbage, message files truncated,
// overwritten or gone. The node starts anyway and sets those entries aside (reported in the log,
// the message log and `npx outpost queue status`); a message whose file is damaged bounces to its
// sender (5.3.0, content lost) rather than going out mangled; the rest is delivered. A later start
// finds nothing new (no crash loop, no repeated reports). A small message, whose body the database
// holds (queue.inlineBodyBytes), has no file to damage: it is delivered.
import Database from 'better-sqlite3';
import { open, rm, truncate } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { headersOf, messageWithStatus, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { freePort } from '../helpers/net.js';
import { outpost } from '../helpers/relay-process.js';

const nodes: E2eNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

describe('damaged queue entries at start-up', () => {
  it('sets aside a garbage row and damaged message files, reports them, and delivers the rest', async () => {
    // First run: five messages in files and one in the database, all waiting for a retry (the smarthost is down).
    const first = await startE2eNode({ relayHost: `127.0.0.1:${await freePort()}`, config: { delivery: { retrySchedule: [3600] }, queue: { inlineBodyBytes: 2048 } } });
    const dataDir = first.dataDir;
    const tenant = await first.tenant('acme', ['acme.test']);
    await first.user(tenant, 'alice@acme.test');
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await submit(first.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: `message ${i}`, text: 'In a file. '.repeat(300) }));
    ids.push(await submit(first.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'small message' }));
    for (const id of ids) await messageWithStatus(first.node, id, 'deferred');
    await first.node.stop();
    await first.dns.stop();

    // Damage: one row's body, one file truncated, one overwritten at its start, one deleted.
    const db = new Database(join(dataDir, 'outpost.db'));
    const rows = db.prepare("SELECT id, body FROM queue_messages WHERE queue = 'deliver'").all() as Array<{ id: string; body: string }>;
    const byMessage = new Map(rows.map((row) => {
      const job = JSON.parse(row.body) as { envelope: { messageId: string; blobKey: string } };
      return [job.envelope.messageId, { row: row.id, blob: join(dataDir, 'blobs', job.envelope.blobKey) }];
    }));
    const [badRow, truncated, garbled, missing, ...good] = ids;
    expect(db.prepare('SELECT key FROM message_bodies').all()).toEqual([{ key: expect.stringMatching(new RegExp(`/${ids.at(-1) ?? ''}\\.eml$`)) }]);
    db.prepare('UPDATE queue_messages SET body = ? WHERE id = ?').run('{"envelope": {"messageId": "', byMessage.get(badRow ?? '')?.row);
    db.close();
    await truncate(byMessage.get(truncated ?? '')?.blob ?? '', 40);
    const handle = await open(byMessage.get(garbled ?? '')?.blob ?? '', 'r+');
    await handle.write(Buffer.alloc(64, 0), 0, 64, 0);
    await handle.close();
    await rm(byMessage.get(missing ?? '')?.blob ?? '');

    // Second run, smarthost up: it starts, sets the four aside, delivers the fifth.
    const second = await startE2eNode({ config: { dataDir } });
    nodes.push(second);
    second.clock.advance(2 * 3600_000);
    for (const id of good) await messageWithStatus(second.node, id, 'delivered');
    for (const id of [truncated, garbled, missing]) {
      const { events } = await messageWithStatus(second.node, id ?? '', 'bounced');
      expect(events.find((event) => event.event === 'damaged')?.detail, id).toBeDefined();
      expect(events.find((event) => event.event === 'bounced')?.detail, id).toMatchObject({ status: '5.3.0' });
      expect(events.some((event) => event.event === 'dsn-sent'), id).toBe(true);
    }
    // At the smarthost: the intact message, and the three DSNs to the sender; nothing mangled.
    const received = await second.sink.waitForMessages(good.length + 3, 20_000);
    expect(received.filter((message) => message.mailFrom !== '').map((message) => headersOf(message.data).get('x-outpost-queue-id')?.[0]).sort()).toEqual([...good].sort());
    expect(received.filter((message) => message.mailFrom === '').map((message) => message.rcptTo)).toEqual([['alice@acme.test'], ['alice@acme.test'], ['alice@acme.test']]);
    expect(existsSync(join(dataDir, 'damaged'))).toBe(true);

    const status = await outpost({ ...process.env, OUTPOST_DATA_DIR: dataDir, OUTPOST_LOG_LEVEL: 'error' }, ['queue', 'status']);
    expect(status).toContain('set aside as damaged: 4');
    expect(status).toContain('body is not JSON');
    expect(status).toMatch(/\(row \S+\)\s+set-aside\s+body is not JSON/);
    expect(status).toMatch(new RegExp(`${truncated}\\s+bounced\\s+message file is truncated`));
    expect(status).toMatch(new RegExp(`${garbled}\\s+bounced\\s+message file does not begin with a header field`));
    expect(status).toMatch(new RegExp(`${missing}\\s+bounced\\s+message file is missing`));

    // A third start finds nothing new: the entries stay set aside, reported once.
    // Stopped without E2eNode.stop(), which would remove the data folder the third run needs.
    await second.node.stop();
    await Promise.all([second.dns.stop(), second.sink.stop()]);
    nodes.splice(0);
    const third = await startE2eNode({ config: { dataDir } });
    nodes.push(third);
    expect(third.node.stores.database.countDamagedEntries()).toBe(4);
  }, 90_000);
});
