import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteSuppressionList } from '../../../adapters/local/suppression-store.js';
import { createLogger } from '../../../core/log.js';
import type { Envelope } from '../../../core/ports.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import { makeBounceHandler } from '../../../lambdas/bounce/handler.js';

const T0 = Date.UTC(2026, 10, 25, 12);
const DAY = 86_400_000;
const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/bounces/${name}`, import.meta.url), 'latin1');

async function setup(options: { forward?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bounce-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  const clock = { now: () => T0 };
  const queue = new SqliteQueue(db, { maxReceives: 5, clock });
  const log = new SqliteMessageLog(db, clock);
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const suppression = new SqliteSuppressionList(db, clock);
  const hardBounces: Array<[string, string]> = [];
  const logLines: string[] = [];
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
  async function bounceEvent(raw: string, overrides: Partial<Envelope> = {}): Promise<SqsEvent> {
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
    return { Records: [sqsRecord(JSON.stringify(envelope), `m${seq}`)] };
  }
  return { handler, queue, log, blobs, suppression, hardBounces, bounceEvent, logLines };
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
    const forwarded = (await blobs.get('bounce-forward/B1-fwd')).toString('latin1');
    expect(forwarded).toContain('X-Outpost-Bounce-For: Q1');
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

  it('drops a record whose body is not an envelope, and retries one whose blob is missing', async () => {
    const { handler, logLines } = await setup();
    const bad = await handler({ Records: [sqsRecord('not json', 'x1')] });
    expect(bad.batchItemFailures).toEqual([]);
    expect(logLines.some((line) => line.includes('invalid bounce record dropped'))).toBe(true);
    const envelope = { messageId: 'B9', tenantId: 't1', userId: '', identity: 'bounce', mailFrom: '', rcptTo: ['ann@example.com'], blobKey: 'bounces/missing', size: 1, receivedAt: T0, clientIp: '', helo: '' };
    const missing = await handler({ Records: [sqsRecord(JSON.stringify(envelope), 'x2')] });
    expect(missing.batchItemFailures).toEqual([{ itemIdentifier: 'x2' }]);
  });
});
