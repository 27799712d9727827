import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { Poller } from '../../../adapters/local/poller.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import { parseConfig } from '../../../core/config.js';
import { createLogger } from '../../../core/log.js';
import type { BlobStore, Clock, Envelope, Resolver } from '../../../core/ports.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import type { MessageLog } from '../../../core/stores.js';
import { deliverJob, deliverJobSchema, makeDeliverHandler, type DeliverDeps } from '../../../lambdas/deliver/handler.js';
import { fakeResolver } from '../../helpers/fake-dns.js';
import { waitFor } from '../../helpers/net.js';
import { startSmtpSink, type SmtpSink } from '../../helpers/smtp-sink.js';
import { startTestMx, type ReceivedMail, type TestMx } from '../../helpers/test-mx.js';
import { makeTestCa } from '../../helpers/tls-certs.js';
import { DeliveryScheduler } from '../../../core/delivery/scheduler.js';
import { nodemailerTransports } from '../../../adapters/smtp/nodemailer-transports.js';

const message = Buffer.from(
  ['From: Alice <alice@sender.test>', 'To: bob@dest.test', 'Subject: quarterly report', 'Message-ID: <m1@sender.test>', '', 'Hello Bob,', '.dot line', ''].join('\r\n'),
);

interface Node {
  db: Db;
  queue: SqliteQueue;
  log: SqliteMessageLog;
  blobs: FsBlobStore;
  logLines: string[];
  deps: DeliverDeps;
  poller?: Poller;
}

const dirs: string[] = [];
const nodes: Node[] = [];

async function makeNode(options: { delivery: Record<string, unknown>; resolver?: Resolver; mxPort?: number; clock?: Clock; onHardBounce?: DeliverDeps['onHardBounce'] }): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-deliver-'));
  dirs.push(dir);
  const clock = options.clock ?? { now: () => Date.now() };
  const db = openDatabase(':memory:');
  const queue = new SqliteQueue(db, { maxReceives: 10, clock });
  const log = new SqliteMessageLog(db, clock);
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const logLines: string[] = [];
  const config = parseConfig({ hostname: 'relay.outpost.test', dataDir: dir, delivery: { connectTimeoutSeconds: 5, ...options.delivery } });
  const deps: DeliverDeps = {
    blobs,
    queue,
    log,
    config,
    resolver: options.resolver ?? fakeResolver({}),
    logger: createLogger('deliver', { write: (line) => logLines.push(line), level: 'debug' }),
    clock,
    mxPort: options.mxPort,
    transports: nodemailerTransports,
    onHardBounce: options.onHardBounce,
  };
  const node: Node = { db, queue, log, blobs, logLines, deps };
  nodes.push(node);
  return node;
}

/** Stores and queues a message as the ingress does, and returns its envelope. */
async function accept(node: Node, rcptTo: string[], mailFrom = 'alice@sender.test', id = `MSG-${Math.random().toString(36).slice(2)}`): Promise<Envelope> {
  const envelope: Envelope = {
    messageId: id,
    tenantId: 't1',
    userId: 'u1',
    identity: 'alice@sender.test',
    mailFrom,
    rcptTo,
    blobKey: `messages/${id}`,
    size: message.length,
    receivedAt: Date.now(),
    clientIp: '192.0.2.1',
    helo: 'client.sender.test',
  };
  await node.blobs.put(envelope.blobKey, message);
  await node.log.create({ ...envelope, id, subject: 'quarterly report', status: 'queued' });
  await node.queue.send('deliver', JSON.stringify(deliverJob(envelope)));
  return envelope;
}

function startPoller(node: Node): void {
  node.poller = new Poller({
    queue: node.queue,
    queueName: 'deliver',
    handler: makeDeliverHandler(node.deps),
    batchSize: 10,
    visibilityTimeoutSeconds: 30,
    pollIntervalMs: 50,
    logger: node.deps.logger,
  });
  node.poller.start();
}

async function statusOf(node: Node, id: string): Promise<string | undefined> {
  return (await node.log.get(id))?.message.status;
}

function sqsEvent(body: string, messageId = 'rec-1'): SqsEvent {
  return {
    Records: [
      {
        messageId,
        receiptHandle: 'rh',
        body,
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', ApproximateFirstReceiveTimestamp: '0' },
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:outpost:sqs:local:deliver',
      },
    ],
  };
}

/** The fields of a message/delivery-status body: the per-message group, then one per recipient. */
async function deliveryStatus(mail: ReceivedMail): Promise<Array<Record<string, string>>> {
  const parsed = await simpleParser(mail.data, { keepDeliveryStatus: true });
  const report = parsed.attachments.find((part) => part.contentType === 'message/delivery-status');
  if (!report) throw new Error('no message/delivery-status part');
  return report.content
    .toString('utf8')
    .replace(/\r\n/g, '\n')
    .replace(/\n[ \t]+/g, ' ')
    .trim()
    .split(/\n\n+/)
    .map((group) => Object.fromEntries(group.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()])));
}

afterEach(async () => {
  for (const node of nodes.splice(0)) {
    await node.poller?.stop();
    node.db.close();
  }
});

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('deliver handler with a smarthost (postfix smtp-sink)', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(async () => {
    await sink.stop();
  });

  it('delivers the exact message once, logs the remote answer, and deletes the blob', async () => {
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${sink.port}` } });
    const envelope = await accept(node, ['bob@dest.test']);
    startPoller(node);

    await waitFor('delivered status', async () => ((await statusOf(node, envelope.messageId)) === 'delivered' ? true : undefined));
    const received = await sink.waitForMessages(1);
    // Nothing else may arrive: the job was acknowledged, not retried.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await sink.messages()).toHaveLength(1);
    expect(received[0]?.rcptTo).toEqual(['bob@dest.test']);
    expect(received[0]?.data.toString('utf8')).toBe(message.toString('utf8').replace(/\r\n/g, '\n'));

    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    expect(events.find((event) => event.event === 'delivered')?.detail).toMatchObject({
      recipient: 'bob@dest.test',
      response: expect.stringMatching(/^250 /),
      attempt: 1,
    });
    expect(await node.blobs.exists(envelope.blobKey)).toBe(false);
    await waitFor('the job acknowledged', async () => ((await node.queue.depth('deliver')).inFlight === 0 ? true : undefined));
    expect(await node.queue.depth('deliver')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});

describe('deliver handler with a test MX giving chosen answers', () => {
  let mx: TestMx;
  beforeAll(async () => {
    mx = await startTestMx({
      rcptAnswer: (address) => {
        if (address.startsWith('nobody@')) return { code: 550, text: `5.1.1 <${address}>: Recipient address rejected: User unknown` };
        if (address.startsWith('busy@')) return { code: 451, text: '4.2.0 Mailbox busy, try later' };
        return undefined;
      },
    });
  });
  afterAll(async () => {
    await mx.stop();
  });

  const mailTo = (recipient: string, mailFrom?: string): ReceivedMail[] =>
    mx.received.filter((mail) => mail.rcptTo.includes(recipient) && (mailFrom === undefined || mail.mailFrom === mailFrom));

  it('defers a 4xx recipient, retries it on the schedule, then expires it with a 4.4.7 DSN to the sender', async () => {
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}`, retrySchedule: [1, 1] } });
    const sender = `alice-${Date.now()}@sender.test`;
    const envelope = await accept(node, ['busy@dest.test'], sender);
    startPoller(node);

    await waitFor('expired status', async () => ((await statusOf(node, envelope.messageId)) === 'expired' ? true : undefined));
    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    const deferred = events.filter((event) => event.event === 'deferred');
    expect(deferred.map((event) => event.detail.attempt)).toEqual([1, 2]);
    expect(deferred[0]?.detail).toMatchObject({ recipient: 'busy@dest.test', status: '4.2.0', diagnostic: '451 4.2.0 Mailbox busy, try later' });
    const expired = events.find((event) => event.event === 'expired');
    expect(expired?.detail).toMatchObject({ recipient: 'busy@dest.test', status: '4.4.7', attempt: 3 });
    // Each retry waited its scheduled second.
    const [first, second] = deferred;
    expect(Number(second?.at) - Number(first?.at)).toBeGreaterThanOrEqual(900);
    expect(Number(expired?.at) - Number(second?.at)).toBeGreaterThanOrEqual(900);
    // The announced time of the next attempt holds.
    expect(Number(second?.at)).toBeGreaterThanOrEqual(Number(first?.detail.nextAttemptAt));
    expect(Number(first?.detail.nextAttemptAt) - Number(first?.at)).toBeGreaterThan(500);

    const dsnMail = await waitFor('the DSN at the MX', async () => mailTo(sender, '')[0]);
    const [perMessage, recipient] = await deliveryStatus(dsnMail);
    expect(perMessage?.['Reporting-MTA']).toBe('dns; relay.outpost.test');
    expect(recipient).toMatchObject({ 'Final-Recipient': 'rfc822; busy@dest.test', Action: 'failed', Status: '4.4.7' });
    expect(recipient?.['Diagnostic-Code']).toBe('smtp; 451 4.2.0 Mailbox busy, try later');
    expect(await node.blobs.exists(envelope.blobKey)).toBe(false);
  });

  it('delivers to one recipient, bounces the other with a DSN, and reports the hard bounce', async () => {
    const bounces: Array<{ id: string; recipient: string; diagnostic: string }> = [];
    const node = await makeNode({
      delivery: { relayHost: `127.0.0.1:${mx.port}` },
      onHardBounce: async (envelope, recipient, diagnostic) => {
        bounces.push({ id: envelope.messageId, recipient, diagnostic });
      },
    });
    const sender = `alice-${Date.now()}@sender.test`;
    const envelope = await accept(node, ['bob@dest.test', 'nobody@dest.test'], sender);
    const handled = mx.received.length;
    startPoller(node);

    await waitFor('partially-delivered status', async () => ((await statusOf(node, envelope.messageId)) === 'partially-delivered' ? true : undefined));
    const original = mx.received.slice(handled).filter((mail) => mail.mailFrom === sender);
    expect(original).toHaveLength(1);
    expect(original[0]?.rcptTo).toEqual(['bob@dest.test']);
    expect(original[0]?.data.equals(message)).toBe(true);

    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    expect(events.find((event) => event.event === 'bounced')?.detail).toMatchObject({ recipient: 'nobody@dest.test', status: '5.1.1' });
    const dsnEvent = events.find((event) => event.event === 'dsn-sent');
    const dsnId = String(dsnEvent?.detail.dsnMessageId);
    expect(bounces).toEqual([{ id: envelope.messageId, recipient: 'nobody@dest.test', diagnostic: '550 5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown' }]);

    // The DSN is a message of its own: logged, queued, delivered with the null sender.
    const dsnMail = await waitFor('the DSN at the MX', async () => mailTo(sender, '')[0]);
    const [, recipient] = await deliveryStatus(dsnMail);
    expect(recipient).toEqual({
      'Final-Recipient': 'rfc822; nobody@dest.test',
      Action: 'failed',
      Status: '5.1.1',
      'Remote-MTA': 'dns; 127.0.0.1',
      'Diagnostic-Code': 'smtp; 550 5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown',
    });
    const parsed = await simpleParser(dsnMail.data);
    expect(parsed.from?.value[0]?.address).toBe('MAILER-DAEMON@relay.outpost.test');
    expect(parsed.attachments.find((part) => part.contentType === 'text/rfc822-headers')?.content.toString()).toContain('Subject: quarterly report');
    await waitFor('DSN delivered status', async () => ((await statusOf(node, dsnId)) === 'delivered' ? true : undefined));
    const dsnRecord = await node.log.get(dsnId);
    expect(dsnRecord?.message).toMatchObject({ mailFrom: '', rcptTo: [sender], tenantId: 't1', userId: 'u1' });
  });

  it('drops a duplicate receive of an attempt already done: one delivery, one DSN, blob freed', async () => {
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}` } });
    const sender = `alice-dup-${Date.now()}@sender.test`;
    const envelope = await accept(node, ['bob@dest.test', 'nobody@dest.test'], sender);
    const handler = makeDeliverHandler(node.deps);
    const body = JSON.stringify(deliverJob(envelope));
    expect(await handler(sqsEvent(body, 'rec-dup'))).toEqual({ batchItemFailures: [] });
    // SQS hands the same record out again (the first ack was lost).
    expect(await handler(sqsEvent(body, 'rec-dup'))).toEqual({ batchItemFailures: [] });

    expect(mx.received.filter((mail) => mail.mailFrom === sender)).toHaveLength(1);
    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    expect(events.filter((event) => event.event === 'dsn-sent')).toHaveLength(1);
    expect(events.filter((event) => event.event === 'delivered')).toHaveLength(1);
    expect((await node.queue.depth('deliver')).visible).toBe(2); // the original job and one DSN
    expect(await node.blobs.exists(envelope.blobKey)).toBe(false);
    expect(node.logLines.some((line) => line.includes('duplicate receive dropped'))).toBe(true);
  });

  it('sends one DSN when a receive died after queueing it but before logging the outcome', async () => {
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}` } });
    const sender = `alice-crash-${Date.now()}@sender.test`;
    const envelope = await accept(node, ['nobody@dest.test'], sender);
    let crash = true;
    const crashingLog: MessageLog = {
      create: (record) => node.log.create(record),
      get: (id) => node.log.get(id),
      search: (query) => node.log.search(query),
      purgeOlderThan: (cutoff) => node.log.purgeOlderThan(cutoff),
      eventCounts: () => node.log.eventCounts(),
      recordProviderIds: (id, providerIds) => node.log.recordProviderIds(id, providerIds),
      findByProviderId: (providerId) => node.log.findByProviderId(providerId),
      addEvent: async (id, event, detail, status) => {
        if (crash && event === 'bounced') {
          crash = false;
          throw new Error('process died here');
        }
        return node.log.addEvent(id, event, detail, status);
      },
    };
    const body = JSON.stringify(deliverJob(envelope));
    expect(await makeDeliverHandler({ ...node.deps, log: crashingLog })(sqsEvent(body, 'rec-crash'))).toEqual({ batchItemFailures: [{ itemIdentifier: 'rec-crash' }] });
    expect(await makeDeliverHandler(node.deps)(sqsEvent(body, 'rec-crash'))).toEqual({ batchItemFailures: [] });
    const jobs = (await node.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 60 })).map((item) => deliverJobSchema.parse(JSON.parse(item.body)));
    expect(jobs.filter((job) => job.envelope.mailFrom === '' && job.envelope.rcptTo[0] === sender)).toHaveLength(1);
    expect(await statusOf(node, envelope.messageId)).toBe('bounced');
  });

  it('sends no DSN when a message with the null sender bounces', async () => {
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}` } });
    const envelope = await accept(node, ['nobody@dest.test'], '');
    startPoller(node);

    await waitFor('bounced status', async () => ((await statusOf(node, envelope.messageId)) === 'bounced' ? true : undefined));
    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    expect(events.map((event) => event.event)).toEqual(['bounced', 'dsn-suppressed']);
    expect((await node.log.search({})).items).toHaveLength(1);
    // The status is written before the poller acknowledges the record: wait for the ack.
    await waitFor('the job acknowledged', async () => ((await node.queue.depth('deliver')).inFlight === 0 ? true : undefined));
    expect(await node.queue.depth('deliver')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await node.blobs.exists(envelope.blobKey)).toBe(false);
  });

  it('routes by MX through the resolver when no smarthost is set', async () => {
    const resolver = fakeResolver({
      'mx-routed.test': { MX: [{ exchange: 'mx.mx-routed.test', priority: 10 }] },
      'mx.mx-routed.test': { A: ['127.0.0.1'] },
      'nomail.test': { MX: [{ exchange: '', priority: 0 }] },
    });
    const node = await makeNode({ delivery: { allowPrivateMxAddresses: true }, resolver, mxPort: mx.port });
    const envelope = await accept(node, ['carol@mx-routed.test', 'x@nomail.test'], '');
    startPoller(node);

    await waitFor('partially-delivered status', async () => ((await statusOf(node, envelope.messageId)) === 'partially-delivered' ? true : undefined));
    expect(mailTo('carol@mx-routed.test')).toHaveLength(1);
    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    expect(events.find((event) => event.event === 'delivered')?.detail).toMatchObject({ recipient: 'carol@mx-routed.test', remoteMta: 'mx.mx-routed.test' });
    expect(events.find((event) => event.event === 'bounced')?.detail).toMatchObject({ recipient: 'x@nomail.test', status: '5.1.10' });
  });

  it('never connects to an MX on loopback by default: deferred (4.4.4), then expired with a DSN; delivered when allowed', async () => {
    const resolver = fakeResolver({
      'inside.test': { MX: [{ exchange: 'mx.inside.test', priority: 10 }] },
      'mx.inside.test': { A: ['127.0.0.1'] },
      'sender.test': { A: ['192.0.2.1'] },
    });
    const recipient = `carol-${Date.now()}@inside.test`;
    const guarded = await makeNode({ delivery: { retrySchedule: [1] }, resolver, mxPort: mx.port });
    const envelope = await accept(guarded, [recipient]);
    startPoller(guarded);
    await waitFor('expired status', async () => ((await statusOf(guarded, envelope.messageId)) === 'expired' ? true : undefined));
    expect(mx.rcptAttempts).not.toContain(recipient);
    const events = (await guarded.log.get(envelope.messageId))?.events ?? [];
    expect(events.find((event) => event.event === 'deferred')?.detail).toMatchObject({ status: '4.4.4', diagnostic: expect.stringMatching(/loopback, private or link-local \(mx\.inside\.test\[127\.0\.0\.1\]\)/) });
    expect(events.find((event) => event.event === 'expired')?.detail).toMatchObject({ recipient, status: '4.4.7' });
    expect(events.some((event) => event.event === 'dsn-sent')).toBe(true);

    const allowing = await makeNode({ delivery: { allowPrivateMxAddresses: true }, resolver, mxPort: mx.port });
    const second = await accept(allowing, [recipient]);
    await makeDeliverHandler(allowing.deps)(sqsEvent(JSON.stringify(deliverJob(second))));
    expect(await statusOf(allowing, second.messageId)).toBe('delivered');
    expect(mailTo(recipient)).toHaveLength(1);
  });

  it('postpones a job whose destination is at its concurrency limit, without using up an attempt, then delivers it', async () => {
    let now = Date.now();
    const clock: Clock = { now: () => now };
    const scheduler = new DeliveryScheduler({ perDestination: 1, waitMs: 50 });
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}` }, clock });
    const handler = makeDeliverHandler({ ...node.deps, scheduler });
    const envelope = await accept(node, ['postponed@dest.test']);
    const [first] = await node.queue.receive('deliver', { max: 1, visibilityTimeoutSeconds: 30 });
    const held = await scheduler.acquire(`relay:127.0.0.1:${mx.port}`);

    expect((await handler(sqsEvent(first?.body ?? ''))).batchItemFailures).toEqual([]);
    expect(mx.rcptAttempts).not.toContain('postponed@dest.test');
    expect(await statusOf(node, envelope.messageId)).toBe('queued');
    expect((await node.log.get(envelope.messageId))?.events).toEqual([]);
    expect(await node.blobs.exists(envelope.blobKey)).toBe(true);
    expect(await node.queue.depth('deliver')).toMatchObject({ inFlight: 1, delayed: 1 }); // the received job and the postponed one
    held?.release();

    now += 6_000;
    const jobs = await node.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 30 });
    const later = jobs.map((item) => deliverJobSchema.parse(JSON.parse(item.body))).find((job) => job.notBefore !== undefined);
    expect(later).toMatchObject({ attempt: 1, pending: ['postponed@dest.test'] });
    await handler(sqsEvent(JSON.stringify(later)));
    expect(await statusOf(node, envelope.messageId)).toBe('delivered');
    expect(mailTo('postponed@dest.test')).toHaveLength(1);
  });

  it('waits longer than the queue can delay (SQS: 15 minutes) in hops, without attempting early', async () => {
    let now = Date.now();
    const clock: Clock = { now: () => now };
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}`, retrySchedule: [3600] }, clock });
    const handler = makeDeliverHandler(node.deps);
    const envelope = await accept(node, ['busy@dest.test']);
    const take = async () => {
      const [received] = await node.queue.receive('deliver', { max: 1, visibilityTimeoutSeconds: 30 });
      if (!received) return undefined;
      await node.queue.delete('deliver', received.receiptHandle);
      return received;
    };

    const first = await take();
    expect((await handler(sqsEvent(first?.body ?? ''))).batchItemFailures).toEqual([]);
    expect(await node.queue.depth('deliver')).toMatchObject({ visible: 0, delayed: 1 });
    const attempts = mx.rcptAttempts.filter((address) => address === 'busy@dest.test').length;

    now += 901_000;
    const hop = await take();
    expect(hop).toBeDefined();
    expect((await handler(sqsEvent(hop?.body ?? ''))).batchItemFailures).toEqual([]);
    // Too early: queued again for the rest of the hour, nothing sent.
    expect(mx.rcptAttempts.filter((address) => address === 'busy@dest.test').length).toBe(attempts);
    expect(await statusOf(node, envelope.messageId)).toBe('deferred');

    now += 2_700_000;
    const due = await take();
    await handler(sqsEvent(due?.body ?? ''));
    expect(mx.rcptAttempts.filter((address) => address === 'busy@dest.test').length).toBe(attempts + 1);
    expect(await statusOf(node, envelope.messageId)).toBe('expired');
  });
});

describe('deliver handler when queueing the retry fails', () => {
  let mx: TestMx;
  beforeAll(async () => {
    mx = await startTestMx({ rcptAnswer: () => ({ code: 451, text: '4.3.0 Try again later' }) });
  });
  afterAll(async () => {
    await mx.stop();
  });

  it('does not acknowledge the job, and keeps the message, until the retry is queued', async () => {
    const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${mx.port}`, retrySchedule: [60] } });
    const envelope = await accept(node, ['bob@dest.test']);
    const failingQueue = Object.create(node.queue) as SqliteQueue;
    failingQueue.send = async () => {
      throw new Error('queue unavailable');
    };
    const handler = makeDeliverHandler({ ...node.deps, queue: failingQueue });
    const result = await handler(sqsEvent(JSON.stringify(deliverJob(envelope)), 'rec-retry'));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'rec-retry' }] });
    expect(await node.blobs.exists(envelope.blobKey)).toBe(true);
    expect(await statusOf(node, envelope.messageId)).toBe('queued');
  });

  it('delivers over verified STARTTLS when TLS is required and offered', async () => {
    const ca = makeTestCa();
    const tlsMx = await startTestMx({ tls: ca.issue(['127.0.0.1']) });
    try {
      const node = await makeNode({ delivery: { relayHost: `127.0.0.1:${tlsMx.port}`, requireTls: true, tlsCaFile: ca.caFile } });
      const envelope = await accept(node, ['bob@dest.test']);
      const result = await makeDeliverHandler(node.deps)(sqsEvent(JSON.stringify(deliverJob(envelope))));
      expect(result.batchItemFailures).toEqual([]);
      expect(await statusOf(node, envelope.messageId)).toBe('delivered');
      expect(tlsMx.received.map((mail) => mail.secure)).toEqual([true]);
    } finally {
      await tlsMx.stop();
      ca.remove();
    }
  });
});

describe('deliver handler on bad input', () => {
  it('drops a body that is not a deliver job, logging why', async () => {
    const node = await makeNode({ delivery: { relayHost: '127.0.0.1:9' } });
    const handler = makeDeliverHandler(node.deps);
    expect(await handler(sqsEvent('{"envelope": {}, "attempt": 0}'))).toEqual({ batchItemFailures: [] });
    expect(await handler(sqsEvent('not json'))).toEqual({ batchItemFailures: [] });
    expect(node.logLines.filter((line) => line.includes('invalid deliver job dropped'))).toHaveLength(2);
  });

  it('reports the record as failed, for the queue to retry, when the message blob cannot be read for now', async () => {
    const node = await makeNode({ delivery: { relayHost: '127.0.0.1:9' } });
    const envelope = await accept(node, ['bob@dest.test']);
    const failingReads: BlobStore = {
      put: (key, data) => node.blobs.put(key, data),
      putStream: (key, source) => node.blobs.putStream(key, source),
      exists: (key) => node.blobs.exists(key),
      delete: (key) => node.blobs.delete(key),
      get: async () => {
        throw new Error('EIO: i/o error, read');
      },
    };
    const handler = makeDeliverHandler({ ...node.deps, blobs: failingReads });
    const result = await handler(sqsEvent(JSON.stringify(deliverJob(envelope)), 'rec-unreadable'));
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'rec-unreadable' }] });
    expect(await statusOf(node, envelope.messageId)).toBe('queued');
    expect(await node.blobs.exists(envelope.blobKey)).toBe(true);
  });

  it('bounces the pending recipients (5.3.0) and tells the sender when the message content is gone', async () => {
    const node = await makeNode({ delivery: { relayHost: '127.0.0.1:9' } });
    const envelope = await accept(node, ['bob@dest.test', 'carol@dest.test']);
    await node.blobs.delete(envelope.blobKey);
    const handler = makeDeliverHandler(node.deps);
    const result = await handler(sqsEvent(JSON.stringify(deliverJob(envelope)), 'rec-missing'));
    expect(result).toEqual({ batchItemFailures: [] });
    expect(await statusOf(node, envelope.messageId)).toBe('bounced');
    const events = (await node.log.get(envelope.messageId))?.events ?? [];
    expect(events.filter((event) => event.event === 'bounced').map((event) => [event.detail.recipient, event.detail.status])).toEqual([
      ['bob@dest.test', '5.3.0'],
      ['carol@dest.test', '5.3.0'],
    ]);
    const jobs = (await node.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 60 })).map((item) => deliverJobSchema.parse(JSON.parse(item.body)));
    const dsn = jobs.find((job) => job.envelope.messageId !== envelope.messageId);
    if (!dsn) throw new Error('no DSN queued');
    expect(dsn.envelope).toMatchObject({ mailFrom: '', rcptTo: [envelope.mailFrom] });
    const report = (await node.blobs.get(dsn.envelope.blobKey)).toString();
    expect(report).toContain('Status: 5.3.0');
    expect(report).toContain('Final-Recipient: rfc822; carol@dest.test');
  });
});
