// The SESv2 mailer: wiring checked against aws-ses-v2-local (a real SESv2 client, the emulator's
// answers and store), message content against the capture server: a DKIM-signed message arrives
// byte-exact and still verifies with dkimpy; tags, configuration set, recipient groups of 50 and
// the mapping of SES errors to outcomes.
import type { SESv2Client } from '@aws-sdk/client-sesv2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesClient } from '../../../adapters/aws/clients.js';
import { SES_MAX_RAW_BYTES, SesMailer, sesTagValue } from '../../../adapters/aws/ses-mailer.js';
import { dkimDnsRecord, generateDkimKeyPair } from '../../../core/dkim/keys.js';
import { signMessage } from '../../../core/dkim/sign.js';
import { emulatorClientConfig } from '../../helpers/aws-emulators.js';
import { verifyWithDkimpy } from '../../helpers/dkimpy.js';
import { startSesCapture, startSesLocal, type SesCapture } from '../../helpers/ses-emulators.js';

const message = (subject: string): Buffer =>
  Buffer.from(
    [
      'From: Alice <alice@acme.example>',
      'To: bob@example.org',
      `Subject: ${subject}`,
      'Date: Wed, 25 Nov 2026 14:00:00 +0000',
      'Message-ID: <m1@acme.example>',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Hello Bob,',
      '',
      'the numbers you asked for. ',
      '.leading dot and trailing spaces   ',
      '',
    ].join('\r\n'),
  );

describe('SesMailer against aws-ses-v2-local', () => {
  it('sends a raw message with tags and a configuration set; the emulator stores it under the id returned', async () => {
    const ses = await startSesLocal();
    const client = sesClient(emulatorClientConfig(ses));
    try {
      const mailer = new SesMailer({ client, configurationSet: 'outpost-events' });
      const result = await mailer.send({
        mailFrom: 'alice@acme.example',
        rcptTo: ['bob@example.org'],
        raw: message('Quarterly numbers'),
        tags: { tenantId: 'acme', userId: 'alice@acme.example', messageId: 'Q1.2026' },
      });
      expect(result.outcomes).toEqual([{ recipient: 'bob@example.org', result: 'delivered', response: `250 Ok ${result.providerMessageIds[0]}`, remoteMta: 'amazonses.com', providerMessageId: result.providerMessageIds[0] }]);
      const stored = (await ses.emails()).find((email) => email.messageId === result.providerMessageIds[0]);
      expect(stored).toMatchObject({ subject: 'Quarterly numbers', from: '"Alice" <alice@acme.example>', destination: { to: ['bob@example.org'] } });
    } finally {
      client.destroy();
      await ses.stop();
    }
  });
});

describe('SesMailer against the capture server', () => {
  let capture: SesCapture;
  let client: SESv2Client;
  beforeAll(async () => {
    capture = await startSesCapture();
    client = sesClient({ ...emulatorClientConfig(capture) });
  });
  afterAll(async () => {
    client?.destroy();
    await capture?.stop();
  });

  it('delivers a DKIM-signed message byte for byte: the signature still verifies (dkimpy)', async () => {
    const pair = await generateDkimKeyPair('rsa');
    const signed = await signMessage(message('Signed'), { domain: 'acme.example', selector: 'o20261125', privateKey: pair.privateKeyPem, algorithm: 'rsa' });
    const result = await new SesMailer({ client, configurationSet: 'outpost-events' }).send({
      mailFrom: 'alice@acme.example',
      rcptTo: ['bob@example.org', 'hidden@example.net'],
      raw: signed,
      tags: { tenantId: 't_01', userId: 'alice@acme.example', messageId: 'ABC123' },
    });
    expect(result.outcomes.map((outcome) => outcome.result)).toEqual(['delivered', 'delivered']);
    const sent = capture.sends.at(-1);
    expect(sent?.raw.equals(signed)).toBe(true);
    // The envelope recipients, including one that is in no header field (Bcc).
    expect(sent?.destination).toEqual(['bob@example.org', 'hidden@example.net']);
    expect(sent?.configurationSet).toBe('outpost-events');
    expect(sent?.tags).toEqual([
      { Name: 'outpost-tenant', Value: 't_01' },
      { Name: 'outpost-user', Value: 'alice_acme_example' },
      { Name: 'outpost-message', Value: 'ABC123' },
    ]);
    const record = dkimDnsRecord('acme.example', 'o20261125', 'rsa', pair.publicKey);
    const verdict = await verifyWithDkimpy(sent?.raw ?? Buffer.alloc(0), { [record.name.replace(/\.$/, '')]: record.value });
    expect(verdict.results).toEqual([true]);
  });

  it('sends more than 50 recipients in groups of 50, each recipient with its group SES message id', async () => {
    const before = capture.sends.length;
    const rcptTo = Array.from({ length: 120 }, (_, i) => `r${i}@example.org`);
    const result = await new SesMailer({ client }).send({ mailFrom: 'a@acme.example', rcptTo, raw: message('Many') });
    const sends = capture.sends.slice(before);
    expect(sends.map((send) => send.destination.length)).toEqual([50, 50, 20]);
    expect(result.providerMessageIds).toEqual(sends.map((send) => send.messageId));
    expect(result.outcomes[0]?.providerMessageId).toBe(sends[0]?.messageId);
    expect(result.outcomes[119]?.providerMessageId).toBe(sends[2]?.messageId);
    expect(sends[0]?.tags).toEqual([]);
    expect(sends[0]?.configurationSet).toBeUndefined();
  });

  it('turns a rejected message into permanent outcomes and throttling into temporary ones, per group', async () => {
    const once = sesClient({ ...emulatorClientConfig(capture), maxAttempts: 1 });
    try {
      const mailer = new SesMailer({ client: once });
      capture.failNext(400, 'MessageRejected');
      const rejected = await mailer.send({ mailFrom: 'a@acme.example', rcptTo: ['x@example.org'], raw: message('Rejected') });
      expect(rejected.outcomes[0]).toMatchObject({ recipient: 'x@example.org', result: 'permanent', status: '5.7.1', diagnosticType: 'x-outpost' });
      expect(rejected.outcomes[0]?.result === 'permanent' && rejected.outcomes[0].diagnostic).toMatch(/^SES MessageRejected/);
      capture.failNext(429, 'TooManyRequestsException');
      const rcptTo = Array.from({ length: 60 }, (_, i) => `t${i}@example.org`);
      const throttled = await mailer.send({ mailFrom: 'a@acme.example', rcptTo, raw: message('Throttled') });
      expect(throttled.outcomes.filter((outcome) => outcome.result === 'temporary')).toHaveLength(50);
      expect(throttled.outcomes.filter((outcome) => outcome.result === 'delivered')).toHaveLength(10);
      capture.failNext(400, 'MailFromDomainNotVerifiedException');
      expect((await mailer.send({ mailFrom: 'a@acme.example', rcptTo: ['y@example.org'], raw: message('Config') })).outcomes[0]).toMatchObject({ result: 'temporary', status: '4.7.0' });
    } finally {
      once.destroy();
    }
  });

  it('bounces a message over SES limit of 40 MB without calling SES', async () => {
    const before = capture.sends.length;
    const result = await new SesMailer({ client }).send({ mailFrom: 'a@acme.example', rcptTo: ['x@example.org'], raw: Buffer.alloc(SES_MAX_RAW_BYTES + 1, 65) });
    expect(result.outcomes[0]).toMatchObject({ result: 'permanent', status: '5.3.4' });
    expect(capture.sends.length).toBe(before);
  });
});

describe('sesTagValue', () => {
  it('keeps letters, digits, _ and -, replaces the rest, and caps at 256 characters', () => {
    expect(sesTagValue('alice@acme.example')).toBe('alice_acme_example');
    expect(sesTagValue('Tënant 1/2')).toBe('T_nant_1_2');
    expect(sesTagValue('x'.repeat(300))).toHaveLength(256);
    expect(sesTagValue('')).toBe('_');
  });
});
