// The deliver stage through the Mailer port: with the SESv2 mailer (the capture server records
// the raw bytes) the prepared message goes to SES unchanged, with our ids as tags, no MX lookup,
// and the SES message id kept in the message log; an SES refusal bounces to the sender. The SMTP
// mailer delivers a prepared message over SMTP through the same port.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesClient } from '../../../adapters/aws/clients.js';
import { SesMailer } from '../../../adapters/aws/ses-mailer.js';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { nodemailerTransports } from '../../../adapters/smtp/nodemailer-transports.js';
import { SmtpMailer } from '../../../adapters/smtp/smtp-mailer.js';
import { deliverJobBody, deliverJobSchema } from '../../../core/app/deliver-job.js';
import { parseConfig } from '../../../core/config.js';
import { createLogger } from '../../../core/log.js';
import type { Envelope, Resolver } from '../../../core/ports.js';
import type { SmtpTransports } from '../../../core/delivery/smtp-transport.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import { makeDeliverHandler } from '../../../lambdas/deliver/handler.js';
import { emulatorClientConfig } from '../../helpers/aws-emulators.js';
import { fakeResolver } from '../../helpers/fake-dns.js';
import { startSesCapture, type SesCapture } from '../../helpers/ses-emulators.js';
import { startTestMx } from '../../helpers/test-mx.js';

const message = Buffer.from(['From: Alice <alice@acme.example>', 'To: bob@example.org', 'Subject: numbers', 'Message-ID: <m1@acme.example>', '', 'Hello Bob,', '.dot line', ''].join('\r\n'));
const quiet = createLogger('deliver', { write: () => undefined });

/** DNS that must not be asked: SES routes by itself. */
const noDns: Resolver = {
  resolveMx: async () => {
    throw new Error('MX lookup with a routing mailer');
  },
  resolve4: async () => [],
  resolve6: async () => [],
  resolveTxt: async () => [],
};
/** SMTP that must not be used: SES sends. */
const noSmtp: SmtpTransports = {
  open: () => {
    throw new Error('SMTP transaction with a routing mailer');
  },
};

function record(body: string): SqsEvent {
  return {
    Records: [
      {
        messageId: 'rec-1',
        receiptHandle: 'rh',
        body,
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', ApproximateFirstReceiveTimestamp: '0' },
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:outpost:sqs:local:deliver',
      },
    ],
  };
}

describe('the deliver stage with the SESv2 mailer', () => {
  let capture: SesCapture;
  let client: SESv2Client;
  let dir: string;
  beforeAll(async () => {
    capture = await startSesCapture();
    client = sesClient({ ...emulatorClientConfig(capture) });
    dir = await mkdtemp(join(tmpdir(), 'outpost-mailers-'));
  });
  afterAll(async () => {
    client?.destroy();
    await capture?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function stage(id: string) {
    const db = openDatabase(':memory:');
    const clock = { now: () => Date.now() };
    const queue = new SqliteQueue(db, { maxReceives: 5, clock });
    const log = new SqliteMessageLog(db, clock);
    const blobs = new FsBlobStore(join(dir, id));
    const envelope: Envelope = {
      messageId: id,
      tenantId: 't_acme',
      userId: 'u_alice',
      identity: 'alice@acme.example',
      mailFrom: 'alice@acme.example',
      rcptTo: ['bob@example.org', 'carol@example.net'],
      blobKey: `messages/${id}`,
      size: message.length,
      receivedAt: Date.now(),
      clientIp: '192.0.2.1',
      helo: 'client.acme.example',
    };
    await blobs.put(envelope.blobKey, message);
    await log.create({ ...envelope, id, subject: 'numbers', status: 'queued' });
    const handler = makeDeliverHandler({
      blobs,
      queue,
      log,
      clock,
      config: parseConfig({ hostname: 'relay.outpost.test', dataDir: dir }),
      resolver: noDns,
      logger: quiet,
      transports: noSmtp,
      mailer: new SesMailer({ client, configurationSet: 'outpost-events' }),
      // Stands in for DKIM signing: what the mailer gets must be these bytes, unchanged.
      prepare: async (raw, env) => ({ raw: Buffer.concat([Buffer.from('DKIM-Signature: v=1; d=acme.example; s=sel; b=stand-in\r\n'), raw]), mailFrom: env.mailFrom }),
    });
    return { envelope, handler, queue, log, blobs };
  }

  it('sends the prepared bytes once for all recipients, tagged with our ids, and logs the SES message id', async () => {
    const { envelope, handler, log, blobs } = await stage('SES1');
    expect(await handler(record(deliverJobBody(envelope)))).toEqual({ batchItemFailures: [] });
    const sent = capture.sends.filter((send) => send.tags.some((tag) => tag.Value === 'SES1'));
    expect(sent).toHaveLength(1);
    expect(sent[0]?.raw.toString()).toBe(`DKIM-Signature: v=1; d=acme.example; s=sel; b=stand-in\r\n${message.toString()}`);
    expect(sent[0]?.destination).toEqual(['bob@example.org', 'carol@example.net']);
    expect(sent[0]?.configurationSet).toBe('outpost-events');
    expect(sent[0]?.tags).toEqual(expect.arrayContaining([expect.objectContaining({ Value: 't_acme' }), expect.objectContaining({ Value: 'u_alice' })]));
    const history = await log.get('SES1');
    expect(history?.message.status).toBe('delivered');
    const delivered = history?.events.filter((event) => event.event === 'delivered') ?? [];
    expect(delivered.map((event) => [event.detail.recipient, event.detail.providerMessageId, event.detail.remoteMta])).toEqual([
      ['bob@example.org', sent[0]?.messageId, 'amazonses.com'],
      ['carol@example.net', sent[0]?.messageId, 'amazonses.com'],
    ]);
    expect(await blobs.exists(envelope.blobKey)).toBe(false);
  });

  it('bounces to the sender when SES refuses the message (permanent), and retries while the SES account cannot send (an operator fixes it)', async () => {
    const rejected = await stage('SES2');
    capture.failNext(400, 'MessageRejected');
    await rejected.handler(record(deliverJobBody(rejected.envelope)));
    const history = await rejected.log.get('SES2');
    expect(history?.message.status).toBe('bounced');
    expect(history?.events.map((event) => event.event)).toEqual(['bounced', 'bounced', 'dsn-sent']);
    const dsn = (await rejected.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 60 })).map((item) => deliverJobSchema.parse(JSON.parse(item.body)));
    expect(dsn.map((job) => [job.envelope.mailFrom, job.envelope.rcptTo])).toEqual([['', ['alice@acme.example']]]);

    const throttled = await stage('SES3');
    capture.failNext(400, 'MailFromDomainNotVerifiedException');
    await throttled.handler(record(deliverJobBody(throttled.envelope)));
    expect((await throttled.log.get('SES3'))?.message.status).toBe('deferred');
    const retry = (await throttled.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 60 })).length + (await throttled.queue.depth('deliver')).delayed;
    expect(retry).toBe(1);
    expect(await throttled.blobs.exists(throttled.envelope.blobKey)).toBe(true);
  });
});

describe('SmtpMailer', () => {
  it('delivers a prepared message over SMTP, byte for byte, and says per recipient what happened', async () => {
    const mx = await startTestMx({ rcptAnswer: (address) => (address.startsWith('nobody@') ? { code: 550, text: '5.1.1 No such user' } : undefined) });
    try {
      const mailer = new SmtpMailer({
        config: parseConfig({ hostname: 'relay.outpost.test', delivery: { connectTimeoutSeconds: 5, allowPrivateMxAddresses: true } }),
        resolver: fakeResolver({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } }),
        logger: quiet,
        mxPort: mx.port,
        transports: nodemailerTransports,
      });
      const result = await mailer.send({ mailFrom: 'bounces@acme.example', rcptTo: ['bob@dest.test', 'nobody@dest.test'], raw: message });
      expect(result.outcomes).toEqual([
        expect.objectContaining({ recipient: 'bob@dest.test', result: 'delivered', remoteMta: 'mx.dest.test' }),
        expect.objectContaining({ recipient: 'nobody@dest.test', result: 'permanent', status: '5.1.1' }),
      ]);
      const [mail] = await mx.waitForMail(1);
      expect(mail?.mailFrom).toBe('bounces@acme.example');
      expect(mail?.rcptTo).toEqual(['bob@dest.test']);
      expect(mail?.data.toString()).toBe(message.toString());
    } finally {
      await mx.stop();
    }
  });
});
