// Outbound sessions are reused per destination: counted at a proxy in front of postfix's
// smtp-sink, N messages to one destination take fewer sessions than N, never more at once than
// delivery.destinationConcurrency, and a cached session that died loses no message.
import { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig, type Config } from '../../../core/config.js';
import { deliverEnvelope, type DeliveryOptions } from '../../../core/delivery/deliver.js';
import { DeliveryScheduler } from '../../../core/delivery/scheduler.js';
import { createLogger } from '../../../core/log.js';
import type { Envelope } from '../../../core/ports.js';
import { startCountingProxy, type CountingProxy } from '../../helpers/counting-proxy.js';
import { fakeResolver } from '../../helpers/fake-dns.js';
import { startSmtpSink, type SmtpSink } from '../../helpers/smtp-sink.js';

const logLines: string[] = [];
const logger = createLogger('test', { write: (line) => void logLines.push(line) });

function config(proxy: CountingProxy, delivery: Record<string, unknown> = {}): Config {
  return parseConfig({ hostname: 'relay.outpost.test', delivery: { relayHost: `127.0.0.1:${proxy.port}`, connectTimeoutSeconds: 5, ...delivery } });
}

function envelope(index: number): Envelope {
  return {
    messageId: `M${index}`,
    tenantId: 't1',
    userId: 'u1',
    identity: 'alice@sender.test',
    mailFrom: 'alice@sender.test',
    rcptTo: [`bob${index}@dest.test`],
    blobKey: `messages/M${index}`,
    size: 0,
    receivedAt: Date.now(),
    clientIp: '192.0.2.1',
    helo: 'client.sender.test',
  };
}

function message(index: number): Buffer {
  return Buffer.from(`From: alice@sender.test\r\nTo: bob${index}@dest.test\r\nSubject: number ${index}\r\n\r\nHello ${index}.\r\n`);
}

async function deliver(index: number, options: DeliveryOptions): Promise<string | undefined> {
  const [outcome] = await deliverEnvelope(envelope(index), message(index), [`bob${index}@dest.test`], options);
  return outcome?.result;
}

describe('outbound connection reuse (smtp-sink behind a counting proxy)', () => {
  let sink: SmtpSink;
  let proxy: CountingProxy;
  let scheduler: DeliveryScheduler | undefined;
  beforeEach(async () => {
    sink = await startSmtpSink();
    proxy = await startCountingProxy(sink.port);
    logLines.length = 0;
  });
  afterEach(async () => {
    scheduler?.close();
    scheduler = undefined;
    await proxy.stop();
    await sink.stop();
  });

  function options(delivery: Record<string, unknown> = {}): DeliveryOptions {
    const cfg = config(proxy, delivery);
    scheduler = DeliveryScheduler.fromConfig(cfg, logger);
    return { config: cfg, resolver: fakeResolver({}), logger, scheduler };
  }

  it('sends 20 messages to one destination, one after the other, over one session', async () => {
    const opts = options();
    for (let index = 0; index < 20; index += 1) expect(await deliver(index, opts)).toBe('delivered');
    const received = await sink.waitForMessages(20);
    expect(received.map((mail) => mail.rcptTo[0]).sort()).toEqual(Array.from({ length: 20 }, (_, index) => `bob${index}@dest.test`).sort());
    expect(proxy.connections).toBe(1);
    expect(scheduler?.connections.stats()).toMatchObject({ opened: 1, reused: 19 });
  });

  it("turns Nagle's algorithm off on the outbound socket, so the end-of-data dot does not wait for a delayed acknowledgement", async () => {
    const noDelay = vi.spyOn(Socket.prototype, 'setNoDelay');
    try {
      expect(await deliver(0, options())).toBe('delivered');
      const outbound = noDelay.mock.contexts.filter((socket): socket is Socket => socket instanceof Socket && socket.remotePort === proxy.port);
      const calls = noDelay.mock.calls.filter((_, index) => outbound.includes(noDelay.mock.contexts[index] as Socket));
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.every(([enable]) => enable === undefined || enable === true)).toBe(true);
    } finally {
      noDelay.mockRestore();
    }
  });

  it('opens a session per message when reuse is off (connectionIdleSeconds 0)', async () => {
    const opts = options({ connectionIdleSeconds: 0 });
    for (let index = 0; index < 5; index += 1) expect(await deliver(index, opts)).toBe('delivered');
    await sink.waitForMessages(5);
    expect(proxy.connections).toBe(5);
  });

  it('sends 40 messages at once over at most destinationConcurrency sessions, all delivered', async () => {
    const opts = options({ destinationConcurrency: 3 });
    // The scheduler's slots hold the others back briefly; none may be postponed here.
    const results = await Promise.all(Array.from({ length: 40 }, (_, index) => deliver(index, opts)));
    expect(results.every((result) => result === 'delivered' || result === 'postponed')).toBe(true);
    const delivered = results.filter((result) => result === 'delivered').length;
    await sink.waitForMessages(delivered);
    expect(delivered).toBe(40);
    expect(proxy.peak).toBeLessThanOrEqual(3);
    expect(proxy.connections).toBeLessThan(40);
    expect(scheduler?.connections.openTo(`relay:127.0.0.1:${proxy.port}`)).toBeLessThanOrEqual(3);
  });

  it('closes a session after messagesPerConnection messages and opens the next', async () => {
    const opts = options({ messagesPerConnection: 5 });
    for (let index = 0; index < 12; index += 1) expect(await deliver(index, opts)).toBe('delivered');
    await sink.waitForMessages(12);
    expect(proxy.connections).toBe(3);
  });

  it('closes an idle session after connectionIdleSeconds', async () => {
    const opts = options({ connectionIdleSeconds: 1 });
    expect(await deliver(0, opts)).toBe('delivered');
    expect(proxy.open).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(proxy.open).toBe(0);
    expect(await deliver(1, opts)).toBe('delivered');
    expect(proxy.connections).toBe(2);
  });

  it('loses no message when the cached session died while idle: it is sent again over a new session', async () => {
    const opts = options();
    expect(await deliver(0, opts)).toBe('delivered');
    // The cached session looks open to the client; its next command gets a reset.
    proxy.breakOpen();
    expect(await deliver(1, opts)).toBe('delivered');
    const received = await sink.waitForMessages(2);
    expect(received.map((mail) => mail.rcptTo[0]).sort()).toEqual(['bob0@dest.test', 'bob1@dest.test']);
    expect(proxy.connections).toBe(2);
    expect(logLines.some((line) => line.includes('cached connection was gone'))).toBe(true);
  });

  it('defers (never loses) a message when the new session fails too', async () => {
    const opts = options();
    expect(await deliver(0, opts)).toBe('delivered');
    proxy.breakOpen();
    await sink.stop();
    const [outcome] = await deliverEnvelope(envelope(1), message(1), ['bob1@dest.test'], opts);
    expect(outcome).toMatchObject({ result: 'temporary' });
    sink = await startSmtpSink();
  });
});
