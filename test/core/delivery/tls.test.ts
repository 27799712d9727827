// Outbound TLS: verified (certificate chain and name) with delivery.requireTls or to a smarthost
// given by name, with extra CAs from delivery.tlsCaFile; a verification failure is a temporary
// failure and nothing is sent in plaintext. Opportunistic STARTTLS to MX hosts stays unverified.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../core/config.js';
import { deliverEnvelope, type DeliveryOptions } from '../../../core/delivery/deliver.js';
import { createLogger } from '../../../core/log.js';
import type { Envelope } from '../../../core/ports.js';
import { fakeResolver } from '../../helpers/fake-dns.js';
import { startTestMx, type TestMx } from '../../helpers/test-mx.js';
import { makeTestCa, type TestCa } from '../../helpers/tls-certs.js';
import { nodemailerTransports } from '../../../adapters/smtp/nodemailer-transports.js';

const logger = createLogger('test', { write: () => undefined });
const message = Buffer.from('From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: tls\r\n\r\nHello.\r\n');
const resolver = fakeResolver({
  'smarthost.tls.test': { A: ['127.0.0.1'] },
  'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
  'mx.dest.test': { A: ['127.0.0.1'] },
});

function envelope(recipient: string): Envelope {
  return {
    messageId: 'TLS1',
    tenantId: 't1',
    userId: 'u1',
    identity: 'alice@sender.test',
    mailFrom: 'alice@sender.test',
    rcptTo: [recipient],
    blobKey: 'messages/TLS1',
    size: message.length,
    receivedAt: Date.now(),
    clientIp: '192.0.2.1',
    helo: 'client.sender.test',
  };
}

function options(delivery: Record<string, unknown>, mxPort?: number): DeliveryOptions {
  const config = parseConfig({ hostname: 'relay.outpost.test', delivery: { connectTimeoutSeconds: 5, allowPrivateMxAddresses: true, ...delivery } });
  return { config, resolver, logger, transports: nodemailerTransports, ...(mxPort !== undefined ? { mxPort } : {}) };
}

async function send(recipient: string, opts: DeliveryOptions) {
  const [outcome] = await deliverEnvelope(envelope(recipient), message, [recipient], opts);
  return outcome;
}

/** Nothing of the transaction reached the server: no MAIL FROM in any form, no RCPT, no DATA. */
function expectNothingSent(mx: TestMx): void {
  expect(mx.mailFromAttempts).toEqual([]);
  expect(mx.rcptAttempts).toEqual([]);
  expect(mx.received).toEqual([]);
}

describe('outbound TLS', () => {
  let ca: TestCa;
  let wrongName: TestMx;
  let rightName: TestMx;
  let noTls: TestMx;
  beforeAll(async () => {
    ca = makeTestCa();
    wrongName = await startTestMx({ tls: ca.selfSigned(['wrong.test']) });
    rightName = await startTestMx({ tls: ca.issue(['smarthost.tls.test', 'mx.dest.test', '127.0.0.1']) });
    noTls = await startTestMx({ noStartTls: true });
  });
  afterAll(async () => {
    await Promise.all([wrongName.stop(), rightName.stop(), noTls.stop()]);
    ca.remove();
  });

  it('defers (4.7.5) a smarthost given by name whose self-signed certificate is for another name, sending nothing', async () => {
    const outcome = await send('bob@dest.test', options({ relayHost: `smarthost.tls.test:${wrongName.port}` }));
    expect(outcome).toMatchObject({ result: 'temporary', status: '4.7.5', diagnostic: expect.stringMatching(/smarthost smarthost\.tls\.test is verified but the certificate of .* did not verify/) });
    expectNothingSent(wrongName);
  });

  it('defers a smarthost whose certificate is for the right name but from an unknown CA, and delivers once the CA is added', async () => {
    const unknownCa = await send('bob@dest.test', options({ relayHost: `smarthost.tls.test:${rightName.port}` }));
    expect(unknownCa).toMatchObject({ result: 'temporary', status: '4.7.5' });
    expect(rightName.received).toHaveLength(0);

    const trusted = await send('bob@dest.test', options({ relayHost: `smarthost.tls.test:${rightName.port}`, tlsCaFile: ca.caFile }));
    expect(trusted).toMatchObject({ result: 'delivered', remoteMta: 'smarthost.tls.test' });
    expect(rightName.received.map((mail) => mail.secure)).toEqual([true]);
  });

  it('never falls back to plaintext with a named smarthost that offers no STARTTLS (4.7.10)', async () => {
    const outcome = await send('bob@dest.test', options({ relayHost: `smarthost.tls.test:${noTls.port}` }));
    expect(outcome).toMatchObject({ result: 'temporary', status: '4.7.10' });
    expectNothingSent(noTls);
  });

  it('with requireTls, verifies MX certificates too: wrong name deferred, right name and trusted CA delivered', async () => {
    const refused = await send('carol@dest.test', options({ requireTls: true }, wrongName.port));
    expect(refused).toMatchObject({ result: 'temporary', status: '4.7.5', diagnostic: expect.stringMatching(/delivery\.requireTls/) });
    expectNothingSent(wrongName);

    const count = rightName.received.length;
    const delivered = await send('carol@dest.test', options({ requireTls: true, tlsCaFile: ca.caFile }, rightName.port));
    expect(delivered).toMatchObject({ result: 'delivered', remoteMta: 'mx.dest.test' });
    expect(rightName.received.slice(count).map((mail) => mail.secure)).toEqual([true]);
  });

  it('keeps opportunistic STARTTLS to MX hosts unverified (a wrong-name certificate still gets TLS)', async () => {
    const outcome = await send('dan@dest.test', options({}, wrongName.port));
    expect(outcome).toMatchObject({ result: 'delivered' });
    expect(wrongName.received.map((mail) => [mail.rcptTo, mail.secure])).toEqual([[['dan@dest.test'], true]]);
    wrongName.received.length = 0;
    wrongName.rcptAttempts.length = 0;
    wrongName.mailFromAttempts.length = 0;
  });
});
