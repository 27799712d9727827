// Upgrading keeps everything: the current code, started on a data folder written by release 0
// (no schema version, tables made by the old store constructors), finds its users, their
// settings, locks, DKIM and BATV keys and API keys, and delivers the mail release 0 had accepted.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../adapters/local/migrations.js';
import { headersOf, messageWithStatus, parseReply, rawSession, rawTransaction, rawMessage, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { buildReleaseZeroFolder } from '../helpers/release-zero.js';

let node: E2eNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

describe('upgrade from release 0', () => {
  it('keeps users, settings, locks, keys and API keys, and delivers the queue release 0 accepted', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'outpost-release0-'));
    const before = await buildReleaseZeroFolder(dataDir, { count: 3 });
    node = await startE2eNode({ config: { dataDir } });
    const { stores, ports } = node.node;
    expect(stores.database.schemaVersion()).toBe(LATEST_SCHEMA_VERSION);

    // The queue: every message accepted before the upgrade is delivered, signed with the old key.
    const received = await node.sink.waitForMessages(before.queued.length, 20_000);
    const byQueueId = new Map(received.map((message) => [headersOf(message.data).get('x-outpost-queue-id')?.[0], message]));
    for (const id of before.queued) {
      const message = byQueueId.get(id);
      expect(message, `message ${id} delivered`).toBeDefined();
      expect(headersOf(message?.data ?? Buffer.alloc(0)).get('dkim-signature')?.[0]).toMatch(/d=acme\.test;.*s=r0sel;/s);
      // BATV tag made with the old key (index 3 of the prvs tag).
      expect(message?.mailFrom).toMatch(/^prvs=3\d{3}[0-9a-f]{6}=alice@acme\.test$/);
      await messageWithStatus(node.node, id, 'delivered');
    }

    // Users and their settings, tenant settings.
    const alice = await stores.configStore.getUser(before.user.id);
    expect(alice?.identity).toBe(before.user.identity);
    expect(alice?.settings).toEqual(before.user.settings);
    expect((await stores.configStore.getTenant(before.tenantId))?.settings).toEqual(before.tenantSettings);
    // The old password still logs in, and the old user can send.
    const { smtp, auth } = await rawSession(ports.submission, before.user.identity, before.user.password);
    expect(auth).toMatch(/^235 /);
    const sent = await rawTransaction(smtp, { mailFrom: before.user.identity, rcptTo: [before.recipient], message: rawMessage(before.user.identity, before.recipient, 'after the upgrade') });
    expect(parseReply(sent.end ?? '').code).toBe(250);
    smtp.close();

    // The permanent lock holds: MAIL FROM of the locked user is refused.
    const lock = await stores.lockStore.read(before.lockedUser.id);
    expect(lock).toMatchObject({ locked: true, permanent: true, timedUnlocks: 2, version: 3 });
    const locked = await rawSession(ports.submission, before.lockedUser.identity, before.user.password);
    expect(locked.auth).toMatch(/^235 /);
    const refused = await rawTransaction(locked.smtp, { mailFrom: before.lockedUser.identity, rcptTo: [before.recipient] });
    expect(parseReply(refused.mail).code).toBe(550);
    locked.smtp.close();

    // Keys: the BATV secret opens, the DKIM key is the default, the API key still authenticates.
    expect((await stores.batvKeys.current(Date.now())).secret.equals(before.batvSecret)).toBe(true);
    expect((await stores.dkimKeys.list(before.domain)).map((key) => [key.selector, key.publicKey])).toEqual([[before.dkim.selector, before.dkim.publicKey]]);
    const api = await fetch(`http://127.0.0.1:${ports.http}/v1/tenants/${before.tenantId}/users`, { headers: { authorization: `Bearer ${before.apiToken}` } });
    expect(api.status).toBe(200);
    await node.sink.waitForMessages(before.queued.length + 1, 20_000);
  }, 60_000);
});
