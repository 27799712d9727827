import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../../core/config.js';
import { deliverEnvelope, enhancedStatus, type DeliveryOptions } from '../../../core/delivery/deliver.js';
import { createLogger } from '../../../core/log.js';
import type { Envelope } from '../../../core/ports.js';
import { fakeResolver, type Zone } from '../../helpers/fake-dns.js';
import { freePort } from '../../helpers/net.js';
import { startSmtpSink, type SmtpSink } from '../../helpers/smtp-sink.js';
import { startTestMx, type TestMx } from '../../helpers/test-mx.js';
import { nodemailerTransports } from '../../../adapters/smtp/nodemailer-transports.js';

const logger = createLogger('test', { write: () => undefined });

function config(delivery: Record<string, unknown> = {}): Config {
  // The test MX listens on loopback, which MX delivery skips unless allowed.
  return parseConfig({ hostname: 'relay.outpost.test', delivery: { connectTimeoutSeconds: 5, allowPrivateMxAddresses: true, ...delivery } });
}

function envelope(rcptTo: string[], mailFrom = 'alice@sender.test'): Envelope {
  return {
    messageId: 'MSG1',
    tenantId: 't1',
    userId: 'u1',
    identity: 'alice@sender.test',
    mailFrom,
    rcptTo,
    blobKey: 'messages/MSG1',
    size: 0,
    receivedAt: Date.now(),
    clientIp: '192.0.2.1',
    helo: 'client.sender.test',
  };
}

// CRLF throughout, a line starting with a dot (must be dot-stuffed on the wire and come out
// intact), 8-bit text, and a long line.
const message = Buffer.from(
  [
    'From: Alice <alice@sender.test>',
    'To: bob@dest.test',
    'Subject: quarterly report',
    'Message-ID: <m1@sender.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Hello Bob,',
    '.a line that starts with a dot',
    '.',
    'Grüße, ' + 'x'.repeat(900),
    '',
  ].join('\r\n'),
  'utf8',
);

describe('deliverEnvelope through a smarthost (postfix smtp-sink)', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(async () => {
    await sink.stop();
  });

  it('delivers the exact message once, with our EHLO name and the envelope as given', async () => {
    const options: DeliveryOptions = { config: config({ relayHost: `127.0.0.1:${sink.port}` }), resolver: fakeResolver({}), logger, transports: nodemailerTransports };
    const outcomes = await deliverEnvelope(envelope(['bob@dest.test', 'carol@other.test']), message, ['bob@dest.test', 'carol@other.test'], options);

    expect(outcomes).toEqual([
      expect.objectContaining({ recipient: 'bob@dest.test', result: 'delivered', remoteMta: '127.0.0.1', response: expect.stringMatching(/^250 /) }),
      expect.objectContaining({ recipient: 'carol@other.test', result: 'delivered' }),
    ]);
    const received = await sink.waitForMessages(1);
    expect(received).toHaveLength(1);
    const [mail] = received;
    expect(mail?.helo).toBe('relay.outpost.test');
    expect(mail?.mailFrom).toBe('alice@sender.test');
    expect(mail?.rcptTo).toEqual(['bob@dest.test', 'carol@other.test']);
    // smtp-sink stores lines with LF; otherwise byte for byte what we stored.
    expect(mail?.data.toString('utf8')).toBe(message.toString('utf8').replace(/\r\n/g, '\n'));
  });

  it('treats every recipient as temporarily failed when the relay refuses the connection', async () => {
    const port = await freePort();
    const options: DeliveryOptions = { config: config({ relayHost: `127.0.0.1:${port}` }), resolver: fakeResolver({}), logger, transports: nodemailerTransports };
    const outcomes = await deliverEnvelope(envelope(['bob@dest.test']), message, ['bob@dest.test'], options);
    expect(outcomes).toEqual([
      expect.objectContaining({ recipient: 'bob@dest.test', result: 'temporary', status: '4.4.1', diagnosticType: 'x-outpost' }),
    ]);
  });

  it('does not deliver in plaintext when TLS is required and the receiver offers no STARTTLS', async () => {
    const before = (await sink.messages()).length;
    const options: DeliveryOptions = {
      config: config({ relayHost: `127.0.0.1:${sink.port}`, requireTls: true }),
      resolver: fakeResolver({}),
      logger,
      transports: nodemailerTransports,
    };
    const outcomes = await deliverEnvelope(envelope(['bob@dest.test']), message, ['bob@dest.test'], options);
    expect(outcomes[0]).toMatchObject({ result: 'temporary', status: '4.7.10', diagnostic: expect.stringContaining('delivery.requireTls') });
    expect((await sink.messages()).length).toBe(before);
  });
});

describe('deliverEnvelope to MX hosts (test MX on loopback)', () => {
  let mx: TestMx;
  let zone: Zone;
  beforeAll(async () => {
    mx = await startTestMx({
      rcptAnswer: (address) => {
        if (address.startsWith('nobody@')) return { code: 550, text: '5.1.1 <' + address + '>: Recipient address rejected: User unknown' };
        if (address.startsWith('busy@')) return { code: 451, text: '4.2.0 Mailbox busy, try later' };
        return undefined;
      },
    });
    zone = {
      'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
      'mx.dest.test': { A: ['127.0.0.1'] },
      'implicit.test': { A: ['127.0.0.1'] },
      'nomail.test': { MX: [{ exchange: '', priority: 0 }] },
    };
  });
  afterAll(async () => {
    await mx.stop();
  });

  const options = (): DeliveryOptions => ({ config: config(), resolver: fakeResolver(zone), logger, mxPort: mx.port, transports: nodemailerTransports });

  it('looks up the MX, delivers the exact bytes over opportunistic STARTTLS, and reports the remote answer', async () => {
    const count = mx.received.length;
    const outcomes = await deliverEnvelope(envelope(['bob@dest.test']), message, ['bob@dest.test'], options());
    expect(outcomes).toEqual([
      { recipient: 'bob@dest.test', result: 'delivered', remoteMta: 'mx.dest.test', response: expect.stringMatching(/^250 /) },
    ]);
    const mail = mx.received[count];
    expect(mx.received).toHaveLength(count + 1);
    expect(mail?.data.equals(message)).toBe(true);
    expect(mail?.secure).toBe(true);
    expect(mail?.helo).toBe('relay.outpost.test');
  });

  it('falls back to the domain’s own address when it has no MX (implicit MX)', async () => {
    const count = mx.received.length;
    const outcomes = await deliverEnvelope(envelope(['dan@implicit.test']), message, ['dan@implicit.test'], options());
    expect(outcomes[0]).toMatchObject({ result: 'delivered', remoteMta: 'implicit.test' });
    expect(mx.received[count]?.rcptTo).toEqual(['dan@implicit.test']);
  });

  it('reports a 5xx for one recipient as permanent while the other is delivered', async () => {
    const count = mx.received.length;
    const outcomes = await deliverEnvelope(envelope(['bob@dest.test', 'nobody@dest.test']), message, ['bob@dest.test', 'nobody@dest.test'], options());
    expect(outcomes[0]).toMatchObject({ recipient: 'bob@dest.test', result: 'delivered' });
    expect(outcomes[1]).toEqual({
      recipient: 'nobody@dest.test',
      result: 'permanent',
      status: '5.1.1',
      diagnostic: '550 5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown',
      diagnosticType: 'smtp',
      remoteMta: 'mx.dest.test',
    });
    expect(mx.received[count]?.rcptTo).toEqual(['bob@dest.test']);
  });

  it('reports a 4xx as temporary with the remote answer', async () => {
    const outcomes = await deliverEnvelope(envelope(['busy@dest.test']), message, ['busy@dest.test'], options());
    expect(outcomes).toEqual([
      { recipient: 'busy@dest.test', result: 'temporary', status: '4.2.0', diagnostic: '451 4.2.0 Mailbox busy, try later', diagnosticType: 'smtp', remoteMta: 'mx.dest.test' },
    ]);
  });

  it('bounces recipients of a null-MX domain without connecting anywhere', async () => {
    const attempts = mx.rcptAttempts.length;
    const outcomes = await deliverEnvelope(envelope(['x@nomail.test']), message, ['x@nomail.test'], options());
    expect(outcomes[0]).toMatchObject({ recipient: 'x@nomail.test', result: 'permanent', status: '5.1.10' });
    expect(mx.rcptAttempts.length).toBe(attempts);
  });

  it('only attempts the recipients it is given (those still pending)', async () => {
    const count = mx.received.length;
    await deliverEnvelope(envelope(['bob@dest.test', 'carol@dest.test']), message, ['carol@dest.test'], options());
    expect(mx.received[count]?.rcptTo).toEqual(['carol@dest.test']);
  });

  it('sends what the prepare hook returns: its bytes and its envelope sender', async () => {
    const count = mx.received.length;
    const signed = Buffer.concat([Buffer.from('DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; s=s1; b=xyz\r\n'), message]);
    const outcomes = await deliverEnvelope(envelope(['bob@dest.test']), message, ['bob@dest.test'], {
      ...options(),
      prepare: async (raw, env) => ({ raw: Buffer.concat([Buffer.from('DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; s=s1; b=xyz\r\n'), raw]), mailFrom: `prvs=0123abcd=${env.mailFrom}` }),
    });
    expect(outcomes[0]).toMatchObject({ result: 'delivered' });
    expect(mx.received[count]?.mailFrom).toBe('prvs=0123abcd=alice@sender.test');
    expect(mx.received[count]?.data.equals(signed)).toBe(true);
  });

  it('sends the null sender as MAIL FROM:<>', async () => {
    const count = mx.received.length;
    await deliverEnvelope(envelope(['bob@dest.test'], ''), message, ['bob@dest.test'], options());
    expect(mx.received[count]?.mailFrom).toBe('');
  });

  it('tries the next MX host when the first refuses the connection', async () => {
    const zoneWithBackup: Zone = {
      'backup.test': { MX: [{ exchange: 'dead.backup.test', priority: 5 }, { exchange: 'mx.dest.test', priority: 10 }] },
      'dead.backup.test': { A: ['127.0.0.2'] },
      'mx.dest.test': { A: ['127.0.0.1'] },
    };
    // Both hosts are reached on mxPort; the test MX listens on 127.0.0.1 only.
    const count = mx.received.length;
    const outcomes = await deliverEnvelope(envelope(['eve@backup.test']), message, ['eve@backup.test'], {
      ...options(),
      resolver: fakeResolver(zoneWithBackup),
    });
    expect(outcomes[0]).toMatchObject({ result: 'delivered', remoteMta: 'mx.dest.test' });
    expect(mx.received[count]?.rcptTo).toEqual(['eve@backup.test']);
  });
});

describe('enhancedStatus', () => {
  it('reads the enhanced code from the answer, else derives it from the reply class', () => {
    expect(enhancedStatus('550 5.7.1 Spam')).toBe('5.7.1');
    expect(enhancedStatus('550 User unknown')).toBe('5.0.0');
    expect(enhancedStatus('421 Too busy')).toBe('4.0.0');
  });
});
