// Head-of-line blocking on the single node, end to end: one recipient domain publishes six MX
// hosts that accept TCP and never greet (blackholes on 127.0.0.2-7), another has a healthy MX
// (the test MX on 127.0.0.1, same port). A message to the healthy domain, submitted right after
// one to the dead domain, is delivered within a small bound while the dead one is still being
// attempted; the dead domain costs at most delivery.mxAddressLimit (5) connections per attempt.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlackholes, type Blackhole } from '../helpers/blackhole.js';
import { a, mx } from '../helpers/dns-server.js';
import { messageWithStatus, startE2eNode, submit, testZone, type E2eNode } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';
import { startTestMx, type TestMx } from '../helpers/test-mx.js';

const DEAD_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
const GREETING_TIMEOUT_SECONDS = 1;

let healthy: TestMx;
let blackholes: Blackhole;
let e2e: E2eNode;

beforeAll(async () => {
  healthy = await startTestMx();
  blackholes = await startBlackholes(DEAD_ADDRESSES, healthy.port);
  const zone = {
    ...testZone(),
    'dead.test': DEAD_ADDRESSES.map((_, index) => mx(10 + index, `mx${index + 1}.dead.test`)),
    ...Object.fromEntries(DEAD_ADDRESSES.map((address, index) => [`mx${index + 1}.dead.test`, [a(address)]])),
    'alive.test': [mx(10, 'mx.alive.test')],
    'mx.alive.test': [a('127.0.0.1')],
  };
  e2e = await startE2eNode({
    zone,
    mxPort: healthy.port,
    config: {
      delivery: { relayHost: undefined, connectTimeoutSeconds: GREETING_TIMEOUT_SECONDS, attemptTimeoutSeconds: 60, retrySchedule: [600] },
    },
  });
  const tenant = await e2e.tenant('acme', ['acme.test']);
  await e2e.user(tenant, 'alice@acme.test');
});

afterAll(async () => {
  await e2e?.stop();
  await blackholes?.stop();
  await healthy?.stop();
});

describe('delivery scheduling', () => {
  it('delivers to a healthy domain in under 2 s while six silent MX hosts of another are still tried, at most 5 of them', async () => {
    const dead = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'x@dead.test', subject: 'to the dead domain' });
    await waitFor('the first blackhole connection', async () => blackholes.connections.length > 0, { timeoutMs: 10_000, intervalMs: 10 });

    const submitted = Date.now();
    const alive = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'y@alive.test', subject: 'to the healthy domain' });
    // From the 250 (the session itself, TLS and a slow password hash, is no part of the pipeline).
    const accepted = Date.now();
    await healthy.waitForMail(1, 5_000);
    const elapsed = Date.now() - accepted;
    expect(elapsed).toBeLessThan(2_000);
    expect(healthy.received[0]?.rcptTo).toEqual(['y@alive.test']);
    await messageWithStatus(e2e.node, alive, 'delivered');
    // The dead domain's attempt was still going on meanwhile.
    expect((await e2e.node.stores.log.get(dead))?.message.status).not.toBe('deferred');

    const deferred = await messageWithStatus(e2e.node, dead, 'deferred');
    expect(blackholes.connections.length).toBeLessThanOrEqual(5);
    expect(blackholes.connections).toEqual(DEAD_ADDRESSES.slice(0, 5));
    expect(deferred.events.find((event) => event.event === 'deferred')?.detail).toMatchObject({ recipient: 'x@dead.test', status: '4.4.1', attempt: 1 });
    console.log(`healthy domain delivered ${elapsed} ms after its 250 (${accepted - submitted + elapsed} ms from connecting); dead domain tried ${blackholes.connections.length} of ${DEAD_ADDRESSES.length} addresses`);
  }, 30_000);
});
