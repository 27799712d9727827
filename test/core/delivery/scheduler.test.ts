// The delivery scheduler: per-destination slots (waiting briefly, then postponing), the MX
// address limit and the time budget of one attempt, against silent listeners on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../core/config.js';
import { deliverEnvelope } from '../../../core/delivery/deliver.js';
import { DeliveryScheduler } from '../../../core/delivery/scheduler.js';
import { createLogger } from '../../../core/log.js';
import type { Envelope } from '../../../core/ports.js';
import { startBlackholes, type Blackhole } from '../../helpers/blackhole.js';
import { fakeResolver } from '../../helpers/fake-dns.js';
import { freePort } from '../../helpers/net.js';
import { nodemailerTransports } from '../../../adapters/smtp/nodemailer-transports.js';

const logger = createLogger('test', { write: () => undefined });
const message = Buffer.from('From: alice@sender.test\r\nTo: x@dead.test\r\nSubject: s\r\n\r\nHello.\r\n');

function envelope(recipient: string): Envelope {
  return { messageId: 'S1', tenantId: 't', userId: 'u', identity: 'alice@sender.test', mailFrom: 'alice@sender.test', rcptTo: [recipient], blobKey: 'b', size: 1, receivedAt: 0, clientIp: '192.0.2.1', helo: 'h' };
}

describe('DeliveryScheduler', () => {
  it('grants perDestination slots per destination, independently of other destinations', async () => {
    const scheduler = new DeliveryScheduler({ perDestination: 2, waitMs: 50 });
    const first = await scheduler.acquire('a.test');
    const second = await scheduler.acquire('a.test');
    expect(first && second).toBeTruthy();
    expect(await scheduler.acquire('a.test')).toBeUndefined();
    expect(await scheduler.acquire('b.test')).toBeDefined();
    expect(scheduler.active('a.test')).toBe(2);
  });

  it('hands a released slot to the oldest waiter, and a double release frees only one', async () => {
    const scheduler = new DeliveryScheduler({ perDestination: 1, waitMs: 1000 });
    const held = await scheduler.acquire('a.test');
    const waiting = scheduler.acquire('a.test');
    held?.release();
    held?.release();
    const passed = await waiting;
    expect(passed?.destination).toBe('a.test');
    expect(scheduler.active('a.test')).toBe(1);
    passed?.release();
    expect(scheduler.active('a.test')).toBe(0);
  });
});

describe('one delivery attempt to silent MX hosts', () => {
  const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
  let port: number;
  let blackholes: Blackhole;
  const resolver = fakeResolver({
    'dead.test': { MX: addresses.map((_, index) => ({ exchange: `mx${index + 1}.dead.test`, priority: 10 + index })) },
    ...Object.fromEntries(addresses.map((address, index) => [`mx${index + 1}.dead.test`, { A: [address] }])),
  });
  beforeAll(async () => {
    port = await freePort();
    blackholes = await startBlackholes(addresses, port);
  });
  afterAll(async () => {
    await blackholes.stop();
  });

  const config = (delivery: Record<string, unknown>) =>
    parseConfig({ hostname: 'relay.outpost.test', delivery: { connectTimeoutSeconds: 1, allowPrivateMxAddresses: true, ...delivery } });

  it('tries at most mxAddressLimit addresses', async () => {
    blackholes.connections.length = 0;
    const [outcome] = await deliverEnvelope(envelope('x@dead.test'), message, ['x@dead.test'], { config: config({ mxAddressLimit: 3 }), resolver, logger, transports: nodemailerTransports, mxPort: port });
    expect(outcome).toMatchObject({ result: 'temporary', status: '4.4.1' });
    expect(blackholes.connections).toEqual(addresses.slice(0, 3));
  });

  it('stops trying further addresses once the attempt time budget is spent', async () => {
    blackholes.connections.length = 0;
    const started = Date.now();
    const [outcome] = await deliverEnvelope(envelope('x@dead.test'), message, ['x@dead.test'], { config: config({ attemptTimeoutSeconds: 2 }), resolver, logger, transports: nodemailerTransports, mxPort: port });
    const elapsed = Date.now() - started;
    expect(outcome).toMatchObject({ result: 'temporary', diagnostic: expect.stringMatching(/attempt time budget of 2s \(delivery\.attemptTimeoutSeconds\) spent after 2 of 5 addresses/) });
    expect(blackholes.connections).toEqual(addresses.slice(0, 2));
    expect(elapsed).toBeLessThan(3_000);
  });

  it('postpones, without connecting, a destination whose slots are all taken', async () => {
    blackholes.connections.length = 0;
    const scheduler = new DeliveryScheduler({ perDestination: 1, waitMs: 100 });
    const held = await scheduler.acquire('dead.test');
    const outcomes = await deliverEnvelope(envelope('x@dead.test'), message, ['x@dead.test'], { config: config({}), resolver, logger, transports: nodemailerTransports, mxPort: port, scheduler });
    expect(outcomes).toEqual([{ recipient: 'x@dead.test', result: 'postponed' }]);
    expect(blackholes.connections).toEqual([]);
    held?.release();
  });
});
