import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteSuppressionList } from '../../../adapters/local/suppression-store.js';
import { parseConfig } from '../../../core/config.js';
import { createLogger } from '../../../core/log.js';
import { Metrics } from '../../../core/metrics.js';
import { BuiltinSpamRules } from '../../../core/scan/builtin-rules.js';
import { GTUBE } from '../../../core/scan/engines.js';
import type { Envelope } from '../../../core/ports.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import { makeBounceHandler } from '../../../lambdas/bounce/handler.js';

const T0 = Date.UTC(2026, 10, 25, 12);
const DAY = 86_400_000;
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/bounces/${name}`, import.meta.url), 'latin1');

const scanning = parseConfig({}).scanning;

async function setup(options: { forward?: boolean; maxRecipients?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bounce-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  const clock = { now: () => T0 };
  const queue = new SqliteQueue(db, { maxReceives: 5, clock });
  const log = new SqliteMessageLog(db, clock);
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const suppression = new SqliteSuppressionList(db, clock);
  const hardBounces: Array<[string, string]> = [];
  const logLines: string[] = [];
  const metrics = new Metrics();
  const handler = makeBounceHandler({
    blobs,
    queue,
    log,
    suppression,
    clock,
    logger: createLogger('bounce', { write: (line) => logLines.push(line) }),
    onHardBounce: async (userId, address) => {
      hardBounces.push([userId, address]);
    },
    shouldForward: async () => options.forward ?? true,
    hostname: 'relay.outpost.test',
    scanning: { spamEngine: new BuiltinSpamRules(scanning.builtinRules), scanning, spamThreshold: 6 },
    maxRecipients: options.maxRecipients ?? 100,
    metrics,
  });
  await log.create({
    id: 'Q1',
    tenantId: 't1',
    userId: 'u1',
    identity: 'ann@example.com',
    mailFrom: 'ann@example.com',
    rcptTo: ['gone@example.net', 'ok@example.net'],
    size: 100,
    subject: 'Quarterly report',
    status: 'delivered',
    receivedAt: T0 - DAY,
  });
  let seq = 0;
  async function bounceEvent(raw: string, overrides: Partial<Envelope> = {}): Promise<SqsEvent & { blobKey: string }> {
    seq += 1;
    const envelope: Envelope = {
      messageId: `B${seq}`,
      tenantId: 't1',
      userId: '',
      identity: 'bounce',
      mailFrom: '',
      rcptTo: ['prvs=3024a1b2c3=ann@example.com'],
      blobKey: `bounces/B${seq}`,
      size: raw.length,
      receivedAt: T0,
      clientIp: '192.0.2.25',
      helo: 'mx.example.net',
      ...overrides,
    };
    await blobs.put(envelope.blobKey, Buffer.from(raw, 'latin1'));
    return { Records: [sqsRecord(JSON.stringify(envelope), `m${seq}`)], blobKey: envelope.blobKey };
  }
  return { handler, queue, log, blobs, suppression, hardBounces, bounceEvent, logLines, metrics };
}

function sqsRecord(body: string, messageId: string): SqsEvent['Records'][number] {
  return {
    messageId,
    receiptHandle: messageId,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(T0), ApproximateFirstReceiveTimestamp: String(T0) },
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:local:bounce',
  };
}

const withQueueId = (raw: string, id: string): string => raw.replace(/X-Outpost-Queue-Id: \S+/, `X-Outpost-Queue-Id: ${id}`);

describe('bounce handler', () => {
  it('records the bounce on the original message, suppresses and counts the hard-bounced address, and forwards it', async () => {
    const { handler, queue, log, blobs, suppression, hardBounces, bounceEvent } = await setup();
    const result = await handler(await bounceEvent(withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1')));
    expect(result.batchItemFailures).toEqual([]);

    const history = await log.get('Q1');
    const event = history?.events.find((item) => item.event === 'bounce-received');
    expect(event?.detail).toMatchObject({
      bounceId: 'B1',
      format: 'dsn',
      recipients: [{ address: 'gone@example.net', status: '5.1.1', action: 'failed', hard: true }],
      forwardedAs: 'B1-fwd',
    });
    expect(await suppression.find('t1', 'gone@example.net', T0 + DAY)).toMatchObject({ source: 'bounce' });
    expect((await suppression.find('t1', 'gone@example.net', T0))?.reason).toContain('5.1.1');
    expect(hardBounces).toEqual([['u1', 'gone@example.net']]);

    const [job] = await queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 30 });
    const body: unknown = JSON.parse(job?.body ?? 'null');
    expect(body).toMatchObject({ attempt: 1, pending: ['ann@example.com'], envelope: { messageId: 'B1-fwd', mailFrom: '', rcptTo: ['ann@example.com'], tenantId: 't1', userId: 'u1' } });
    // Forwarded inside a notice of ours: our postmaster's From, the bounce attached unchanged.
    const forwarded = (await blobs.get('bounce-forward/B1-fwd')).toString('latin1');
    const head = forwarded.slice(0, forwarded.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^From: Mail Delivery System <postmaster@relay\.outpost\.test>$/m);
    expect(head).toContain('X-Outpost-Bounce-For: Q1');
    expect(head).toMatch(/^Content-Type: multipart\/mixed; boundary=/m);
    expect(head).not.toContain('MAILER-DAEMON@mx.example.net');
    expect(forwarded).toMatch(/Content-Type: message\/rfc822\r\n[^]*\r\n\r\nReturn-Path: <>\r\n/);
    expect(forwarded).toContain('Final-Recipient: rfc822; gone@example.net');
    expect((await log.get('B1-fwd'))?.message.status).toBe('queued');
  });

  it('handles a redelivered record once: no second count, no second forward', async () => {
    const { handler, queue, log, hardBounces, bounceEvent } = await setup();
    const event = await bounceEvent(withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1'));
    await handler(event);
    await handler(event);
    expect(hardBounces).toHaveLength(1);
    expect((await queue.depth('deliver')).visible).toBe(1);
    expect((await log.get('Q1'))?.events.filter((item) => item.event === 'bounce-received')).toHaveLength(1);
  });

  it('still forwards a bounce whose earlier receive died after creating the forward but before queueing it', async () => {
    const { handler, queue, log, bounceEvent } = await setup();
    const event = await bounceEvent(withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1'));
    // What the earlier, interrupted receive left: the forward's log record, nothing queued.
    await log.create({ id: 'B1-fwd', tenantId: 't1', userId: 'u1', identity: 'MAILER-DAEMON', mailFrom: '', rcptTo: ['ann@example.com'], size: 1, subject: 'Forwarded bounce', status: 'received', receivedAt: T0 });
    await handler(event);
    expect((await queue.depth('deliver')).visible).toBe(1);
    expect((await log.get('B1-fwd'))?.message.status).toBe('queued');
    await handler(event);
    expect((await queue.depth('deliver')).visible).toBe(1);
  });

  it('does not forward when the tenant does not want it', async () => {
    const { handler, queue, bounceEvent } = await setup({ forward: false });
    await handler(await bounceEvent(withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1')));
    expect((await queue.depth('deliver')).visible).toBe(0);
  });

  it('attributes by sender and recipient when the queue id is missing or names another sender', async () => {
    const { handler, log, hardBounces, bounceEvent } = await setup();
    await log.create({ id: 'OTHER', tenantId: 't2', userId: 'u9', identity: 'eve@evil.example', mailFrom: 'eve@evil.example', rcptTo: ['gone@example.net'], size: 1, subject: null, status: 'delivered', receivedAt: T0 - DAY });
    // The returned headers claim another user's message: that claim is not believed.
    await handler(await bounceEvent(withQueueId(fixture('postfix-dsn-hard.eml'), 'OTHER')));
    expect((await log.get('OTHER'))?.events).toEqual([]);
    expect((await log.get('Q1'))?.events.map((item) => item.event)).toEqual(['bounce-received']);
    expect(hardBounces).toEqual([['u1', 'gone@example.net']]);
  });

  it('reads non-standard bounces too (qmail): soft nothing, hard both', async () => {
    const { handler, suppression, hardBounces, log, bounceEvent } = await setup({ forward: false });
    await log.create({ id: 'Q2', tenantId: 't1', userId: 'u1', identity: 'ann@example.com', mailFrom: 'ann@example.com', rcptTo: ['nobody@example.org', 'other@example.org'], size: 1, subject: null, status: 'delivered', receivedAt: T0 - DAY });
    await handler(await bounceEvent(withQueueId(fixture('qmail.eml'), 'Q2')));
    expect(hardBounces.map(([, address]) => address)).toEqual(['nobody@example.org', 'other@example.org']);
    expect((await suppression.list('t1', T0)).map((entry) => entry.address).sort()).toEqual(['nobody@example.org', 'other@example.org']);
  });

  it('does not suppress or count delayed (soft) recipients', async () => {
    const { handler, suppression, hardBounces, log, bounceEvent } = await setup({ forward: false });
    await log.create({ id: '01JDQY0000000000000000000A', tenantId: 't1', userId: 'u1', identity: 'ann@example.com', mailFrom: 'ann@example.com', rcptTo: ['Slow@Example.org', 'full@example.org'], size: 1, subject: null, status: 'delivered', receivedAt: T0 - DAY });
    await handler(await bounceEvent(fixture('postfix-dsn-delayed-and-failed.eml')));
    expect(hardBounces).toEqual([['u1', 'full@example.org']]);
    expect(await suppression.find('t1', 'Slow@example.org', T0)).toBeUndefined();
  });

  it('drops a record whose body is not an envelope, and one whose bounce file is gone (handled before)', async () => {
    const { handler, logLines } = await setup();
    const bad = await handler({ Records: [sqsRecord('not json', 'x1')] });
    expect(bad.batchItemFailures).toEqual([]);
    expect(logLines.some((line) => line.includes('invalid bounce record dropped'))).toBe(true);
    const envelope = { messageId: 'B9', tenantId: 't1', userId: '', identity: 'bounce', mailFrom: '', rcptTo: ['ann@example.com'], blobKey: 'bounces/missing', size: 1, receivedAt: T0, clientIp: '', helo: '' };
    const missing = await handler({ Records: [sqsRecord(JSON.stringify(envelope), 'x2')] });
    expect(missing.batchItemFailures).toEqual([]);
    expect(logLines.some((line) => line.includes('bounce file gone'))).toBe(true);
  });

  it('deletes the bounce file once handled, whatever the outcome', async () => {
    const { handler, blobs, bounceEvent } = await setup();
    const handled = await bounceEvent(withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1'));
    const unattributed = await bounceEvent(fixture('postfix-dsn-hard.eml').replace(/gone@example\.net/g, 'stranger@example.net').replace(/X-Outpost-Queue-Id: \S+/, 'X-Outpost-Queue-Id: NOPE'));
    for (const event of [handled, unattributed]) {
      expect(await blobs.exists(event.blobKey)).toBe(true);
      expect((await handler(event)).batchItemFailures).toEqual([]);
      expect(await blobs.exists(event.blobKey)).toBe(false);
    }
  });

  it('suppresses and counts only recipients of the original message, whatever else the bounce lists', async () => {
    const { handler, suppression, hardBounces, log, bounceEvent, logLines } = await setup({ forward: false });
    // A DSN about Q1 that also lists addresses Q1 never went to (a customer's biggest correspondent).
    const poisoned = withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1').replace(
      'Final-Recipient: rfc822; gone@example.net',
      ['partner@bigcustomer.example', 'ceo@bigcustomer.example']
        .map((address) => `Final-Recipient: rfc822; ${address}\nAction: failed\nStatus: 5.1.1\n\n`)
        .join('') + 'Final-Recipient: rfc822; gone@example.net',
    );
    await handler(await bounceEvent(poisoned));
    expect(hardBounces).toEqual([['u1', 'gone@example.net']]);
    expect((await suppression.list('t1', T0)).map((entry) => entry.address)).toEqual(['gone@example.net']);
    const event = (await log.get('Q1'))?.events.find((item) => item.event === 'bounce-received');
    expect(event?.detail).toMatchObject({ ignoredRecipients: 2, recipients: [{ address: 'gone@example.net' }] });
    expect(logLines.some((line) => line.includes('recipients the original message did not have'))).toBe(true);
  });

  it('changes nothing for a bounce it cannot attribute to a message of ours', async () => {
    const { handler, queue, suppression, hardBounces, log, bounceEvent, logLines } = await setup();
    // A DSN with no queue id for a recipient that ann never wrote to.
    const stranger = fixture('postfix-dsn-hard.eml').replace(/gone@example\.net/g, 'stranger@example.net').replace(/X-Outpost-Queue-Id: \S+\n/, '');
    await handler(await bounceEvent(stranger));
    expect(hardBounces).toEqual([]);
    expect(await suppression.list('t1', T0)).toEqual([]);
    expect((await queue.depth('deliver')).visible).toBe(0);
    expect((await log.get('Q1'))?.events).toEqual([]);
    expect(logLines.some((line) => line.includes('bounce not attributed'))).toBe(true);
  });

  it('reads at most maxRecipients recipients from one bounce', async () => {
    const { handler, hardBounces, log, bounceEvent } = await setup({ forward: false, maxRecipients: 3 });
    const many = Array.from({ length: 56 }, (_, i) => `r${i}@example.org`);
    await log.create({ id: 'Q56', tenantId: 't1', userId: 'u1', identity: 'ann@example.com', mailFrom: 'ann@example.com', rcptTo: many, size: 1, subject: null, status: 'delivered', receivedAt: T0 - DAY });
    const blocks = many.map((address) => `Final-Recipient: rfc822; ${address}\nAction: failed\nStatus: 5.1.1\n`).join('\n');
    const dsn = withQueueId(fixture('postfix-dsn-hard.eml'), 'Q56').replace(/Final-Recipient: rfc822; gone@example\.net[^]*?\n\n--/, `${blocks}\n--`);
    await handler(await bounceEvent(dsn));
    expect(hardBounces.map(([, address]) => address)).toEqual(['r0@example.org', 'r1@example.org', 'r2@example.org']);
    expect((await log.get('Q56'))?.events[0]?.detail).toMatchObject({ ignoredRecipients: 53 });
  });

  it('drops a bounce that fails the spam scan: counted in a metric, charged to nobody, nothing changed', async () => {
    const { handler, queue, suppression, hardBounces, log, bounceEvent, logLines, metrics } = await setup();
    const spam = withQueueId(fixture('postfix-dsn-hard.eml'), 'Q1').replace('The mail system', `The mail system ${GTUBE}`);
    const event = await bounceEvent(spam);
    expect((await handler(event)).batchItemFailures).toEqual([]);
    expect(hardBounces).toEqual([]);
    expect(await suppression.list('t1', T0)).toEqual([]);
    expect((await queue.depth('deliver')).visible).toBe(0);
    expect((await log.get('Q1'))?.events).toEqual([]);
    expect(await metrics.render()).toMatch(/^outpost_bounces_dropped_total\{reason="spam"\} 1$/m);
    const dropped = logLines.find((line) => line.includes('bounce dropped')) ?? '';
    expect(dropped).toContain('GTUBE');
  });
});
