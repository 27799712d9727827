// Where the relay agrees to deliver, end to end through the submission port: a smarthost given by
// name must present a verifiable certificate for that name (else the message is deferred, nothing
// is sent in plaintext), and MX records pointing at loopback are not followed unless allowed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { a, mx } from '../helpers/dns-server.js';
import { messageWithStatus, startE2eNode, submit, testZone, type E2eNode } from '../helpers/e2e-node.js';
import { startTestMx, type TestMx } from '../helpers/test-mx.js';
import { makeTestCa, type TestCa } from '../helpers/tls-certs.js';

const zone = () => ({ ...testZone(), 'smarthost.test': [a('127.0.0.1')], 'internal.test': [mx(10, 'mx.internal.test')], 'mx.internal.test': [a('127.0.0.1')] });

async function withNode<T>(options: Parameters<typeof startE2eNode>[0], run: (e2e: E2eNode) => Promise<T>): Promise<T> {
  const e2e = await startE2eNode(options);
  try {
    const tenant = await e2e.tenant('acme', ['acme.test']);
    await e2e.user(tenant, 'alice@acme.test');
    return await run(e2e);
  } finally {
    await e2e.stop();
  }
}

describe('outbound safety on the single node', () => {
  let ca: TestCa;
  let wrongName: TestMx;
  let rightName: TestMx;
  beforeAll(async () => {
    ca = makeTestCa();
    wrongName = await startTestMx({ tls: ca.selfSigned(['wrong.test']) });
    rightName = await startTestMx({ tls: ca.issue(['smarthost.test', 'mx.internal.test']) });
  });
  afterAll(async () => {
    await Promise.all([wrongName.stop(), rightName.stop()]);
    ca.remove();
  });

  it('defers mail for a named smarthost whose certificate is for another name (4.7.5), sending nothing, and expires it', async () => {
    await withNode({ zone: zone(), relayHost: `smarthost.test:${wrongName.port}`, config: { delivery: { retrySchedule: [1] } } }, async (e2e) => {
      const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'over verified TLS' });
      const deferred = await messageWithStatus(e2e.node, id, 'deferred');
      expect(deferred.events.find((event) => event.event === 'deferred')?.detail).toMatchObject({ status: '4.7.5', diagnostic: expect.stringMatching(/smarthost smarthost\.test is verified but the certificate/) });
      await messageWithStatus(e2e.node, id, 'expired');
      expect(wrongName.mailFromAttempts).toEqual([]);
      expect(wrongName.received).toEqual([]);
    });
  });

  it('delivers through the named smarthost once its CA is trusted (delivery.tlsCaFile)', async () => {
    await withNode({ zone: zone(), relayHost: `smarthost.test:${rightName.port}`, config: { delivery: { tlsCaFile: ca.caFile } } }, async (e2e) => {
      const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'over verified TLS' });
      await messageWithStatus(e2e.node, id, 'delivered');
      expect(rightName.received.filter((mail) => mail.rcptTo.includes('bob@example.org')).map((mail) => mail.secure)).toEqual([true]);
    });
  });

  it('does not follow an MX on loopback by default (deferred 4.4.4, then expired), and delivers there when allowed', async () => {
    const count = rightName.received.length;
    const delivery = (allow: boolean) => ({ relayHost: undefined, retrySchedule: [1], allowPrivateMxAddresses: allow });
    await withNode({ zone: zone(), mxPort: rightName.port, config: { delivery: delivery(false) } }, async (e2e) => {
      const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'carol@internal.test', subject: 'to an internal MX' });
      const expired = await messageWithStatus(e2e.node, id, 'expired');
      expect(expired.events.find((event) => event.event === 'deferred')?.detail).toMatchObject({ status: '4.4.4', diagnostic: expect.stringMatching(/mx\.internal\.test\[127\.0\.0\.1\]/) });
      expect(rightName.rcptAttempts).not.toContain('carol@internal.test');
    });
    await withNode({ zone: zone(), mxPort: rightName.port, config: { delivery: delivery(true) } }, async (e2e) => {
      const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'carol@internal.test', subject: 'to an internal MX' });
      await messageWithStatus(e2e.node, id, 'delivered');
      expect(rightName.received.slice(count).filter((mail) => mail.rcptTo.includes('carol@internal.test'))).toHaveLength(1);
    });
  }, 40_000);
});
