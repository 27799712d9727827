// Nothing accepted is stranded, on the single node end to end. A message whose scan cannot run
// (clamd down: a port nobody listens on) is retried on the delivery retry schedule and then
// expires with a DSN to its sender, which reaches the smarthost (postfix's smtp-sink). A deliver
// job that keeps failing ends in the dead-letter queue with an operator alert (the metric
// outpost_dead_letters_total and the DLQ depth gauge), and once its cause is fixed,
// `npx outpost queue redrive deliver` moves it back and it is delivered.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverJob } from '../../lambdas/deliver/handler.js';
import type { Envelope } from '../../core/ports.js';
import { messageWithStatus, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { freePort, waitFor } from '../helpers/net.js';
import { outpost, relayEnv, relayPorts } from '../helpers/relay-process.js';

let e2e: E2eNode;

beforeAll(async () => {
  e2e = await startE2eNode({
    config: {
      scanning: { clamd: `127.0.0.1:${await freePort()}` },
      delivery: { retrySchedule: [1, 1] },
      // A failing job is seen again after 2 s and dead-lettered at its second failed receive.
      queue: { visibilityTimeoutSeconds: 2, maxReceives: 2 },
    },
  });
  const tenant = await e2e.tenant('acme', ['acme.test']);
  await e2e.user(tenant, 'alice@acme.test');
});

afterAll(async () => {
  await e2e?.stop();
});

async function metrics(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${e2e.node.ports.http}/metrics`, { headers: { authorization: `Bearer ${e2e.node.operatorToken.token}` } });
  return response.text();
}

describe('nothing stranded', () => {
  it('retries a scan while clamd is down, then expires the message and the sender gets a DSN; nothing unscanned is delivered', async () => {
    const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'while clamd is down' });
    const expired = await messageWithStatus(e2e.node, id, 'expired');
    const deferrals = expired.events.filter((event) => event.event === 'scan-deferred');
    expect(deferrals.map((event) => event.detail.attempt)).toEqual([1, 2]);
    // Each retry waited its scheduled second.
    expect(Number(deferrals[1]?.at) - Number(deferrals[0]?.at)).toBeGreaterThanOrEqual(900);
    expect(expired.events.map((event) => event.event)).toEqual(expect.arrayContaining(['scan-expired', 'dsn-sent']));

    // A dump still being written reads as incomplete: try again.
    const received = () => e2e.sink.messages().catch(() => []);
    const dsn = await waitFor('the DSN at the smarthost', async () => (await received()).find((message) => message.mailFrom === '' && message.rcptTo.includes('alice@acme.test')));
    const text = dsn.data.toString('utf8');
    expect(text).toContain('Final-Recipient: rfc822; bob@example.org');
    expect(text).toContain('Status: 4.4.7');
    expect(text).toMatch(/could not be checked for viruses and spam/);
    expect((await received()).some((message) => message.rcptTo.includes('bob@example.org'))).toBe(false);
  });

  it('alerts when a deliver job ends in the dead-letter queue, and delivers it after `queue redrive`', async () => {
    const { stores } = e2e.node;
    const envelope: Envelope = {
      messageId: 'STRANDED-1',
      tenantId: 'tenant-stranded',
      userId: 'user-stranded',
      identity: 'alice@acme.test',
      mailFrom: 'alice@acme.test',
      rcptTo: ['carol@example.org'],
      blobKey: 'messages/STRANDED-1.eml',
      size: 60,
      receivedAt: Date.now(),
      clientIp: '192.0.2.1',
      helo: 'client.test',
    };
    // The cause: the message file cannot be read (a directory stands where the file should be).
    const blobPath = join(e2e.dataDir, 'blobs', envelope.blobKey);
    await mkdir(blobPath, { recursive: true });
    await stores.log.create({ id: envelope.messageId, tenantId: envelope.tenantId, userId: envelope.userId, identity: envelope.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, subject: 'stranded', status: 'queued', receivedAt: envelope.receivedAt });
    await stores.queue.send('deliver', JSON.stringify(deliverJob(envelope)));

    await waitFor('the job in the dead-letter queue', async () => (await stores.queue.depth('deliver-dlq')).visible === 1, { timeoutMs: 15_000, intervalMs: 100 });
    const scraped = await metrics();
    expect(scraped).toMatch(/^outpost_dead_letters_total\{queue="deliver"\} 1$/m);
    expect(scraped).toMatch(/^outpost_dead_letter_messages\{queue="deliver"\} 1$/m);

    // The operator fixes the cause, then redrives with the CLI against the same data folder.
    await rm(blobPath, { recursive: true });
    await writeFile(blobPath, 'From: alice@acme.test\r\nTo: carol@example.org\r\nSubject: stranded\r\n\r\nHello.\r\n');
    const out = await outpost(relayEnv(e2e.dataDir, await relayPorts()), ['queue', 'redrive', 'deliver']);
    expect(out).toMatch(/deliver-dlq -> deliver: 1 message moved/);

    await messageWithStatus(e2e.node, envelope.messageId, 'delivered');
    const delivered = await e2e.sink.waitForMessages(1);
    expect(delivered.some((message) => message.rcptTo.includes('carol@example.org'))).toBe(true);
    expect(await stores.queue.depth('deliver-dlq')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await metrics()).toMatch(/^outpost_dead_letter_messages\{queue="deliver"\} 0$/m);
  }, 40_000);
});
