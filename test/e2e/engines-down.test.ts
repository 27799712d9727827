// Scanning engines unavailable, through the whole single node: while clamd or rspamd is down,
// accepted mail stays in the scan queue ('scan-deferred' in its log) and is never delivered
// unscanned; when the engine is back, it is scanned and delivered. (The database being
// unavailable is covered in storage-faults.test.ts: clients get 451 4.3.0.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClamd, type TestDaemon } from '../helpers/clamd.js';
import { messageWithStatus, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { startRspamd } from '../helpers/rspamd.js';
import { startSwitchableProxy, type SwitchableProxy } from '../helpers/switchable-proxy.js';

let clamd: TestDaemon;
let rspamd: TestDaemon & { url: string };
let clamdProxy: SwitchableProxy;
let rspamdProxy: SwitchableProxy;
let node: E2eNode;

beforeAll(async () => {
  [clamd, rspamd] = await Promise.all([startClamd(), startRspamd()]);
  clamdProxy = await startSwitchableProxy(clamd.port);
  rspamdProxy = await startSwitchableProxy(Number(new URL(rspamd.url).port));
  node = await startE2eNode({
    config: {
      scanning: { clamd: `127.0.0.1:${clamdProxy.port}`, rspamdUrl: `http://127.0.0.1:${rspamdProxy.port}`, engineTimeoutMs: 5000 },
      // A failed scan is received again after this many seconds.
      queue: { visibilityTimeoutSeconds: 1 },
      // A scan that failed is tried again a second later, for a minute: long enough that the
      // engine comes back before the message expires, however slow the machine (with three
      // tries the message could expire in the test's 3 s wait).
      delivery: { retrySchedule: Array.from({ length: 60 }, () => 1) },
    },
  });
  const tenant = await node.tenant('acme', ['acme.test']);
  await node.user(tenant, 'alice@acme.test');
}, 180_000);

afterAll(async () => {
  await node?.stop();
  await Promise.all([clamdProxy?.stop(), rspamdProxy?.stop()]);
  await Promise.all([clamd?.stop(), rspamd?.stop()]);
});

async function heldWhileDown(proxy: SwitchableProxy, subject: string): Promise<void> {
  proxy.up = false;
  const id = await submit(node.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject });
  const { events } = await messageWithStatus(node.node, id, 'deferred');
  expect(events.some((event) => event.event === 'scan-deferred')).toBe(true);
  // Several receives later it is still held: in the scan queue, not at the smarthost.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const retries = ((await node.node.stores.log.get(id))?.events ?? []).filter((event) => event.event === 'scan-deferred').length;
  expect(retries).toBeGreaterThanOrEqual(2);
  expect(((await node.node.stores.log.get(id))?.events ?? []).some((event) => event.event === 'delivered')).toBe(false);
  expect((await node.sink.messages()).some((message) => message.data.toString().includes(`Subject: ${subject}`))).toBe(false);

  proxy.up = true;
  const delivered = await messageWithStatus(node.node, id, 'delivered');
  expect(delivered.events.some((event) => event.event === 'scanned')).toBe(true);
}

describe('scanning engines unavailable', () => {
  it('holds mail while clamd is down and delivers it, scanned, once clamd is back', async () => {
    await heldWhileDown(clamdProxy, 'while clamd is down');
  }, 60_000);

  it('holds mail while rspamd is down and delivers it, scanned, once rspamd is back', async () => {
    await heldWhileDown(rspamdProxy, 'while rspamd is down');
  }, 60_000);
});
