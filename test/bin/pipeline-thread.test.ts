// The single node's pipeline in a worker thread (queue.pipelineWorker, the default when no test
// clock is given): mail submitted to the ingress on the main thread is scanned, signed and
// delivered by the worker through its own database connection, and a stop ends the worker.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startNode, type RunningNode } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import { addDkimKey } from '../../core/dkim/keys.js';
import { hashPassword } from '../../core/identity.js';
import { createLogger } from '../../core/log.js';
import { a, mx, startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { messageWithStatus, PASSWORD, submit } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';

describe('the pipeline in a worker thread', () => {
  let dataDir: string;
  let dns: DnsServer;
  let sink: SmtpSink;
  let node: RunningNode | undefined;
  const lines: Array<{ message: string; threadId?: number; code?: number }> = [];

  beforeEach(async () => {
    lines.length = 0;
    dataDir = await mkdtemp(join(tmpdir(), 'outpost-pipeline-thread-'));
    dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
    sink = await startSmtpSink();
  });
  afterEach(async () => {
    await node?.stop();
    node = undefined;
    await Promise.all([dns.stop(), sink.stop()]);
    await rm(dataDir, { recursive: true, force: true });
  });

  async function start(queue: Record<string, unknown> = {}, policy: Record<string, unknown> = {}): Promise<RunningNode> {
    const config = parseConfig({
      dataDir,
      hostname: 'relay.test',
      listenAddress: '127.0.0.1',
      smtp: { port: 0, smtpsPort: 0, bouncePort: 0 },
      http: { port: 0 },
      delivery: { relayHost: `127.0.0.1:${sink.port}`, connectTimeoutSeconds: 5 },
      dns: { servers: [dns.address], timeoutMs: 1000 },
      queue: { pollIntervalMs: 50, ...queue },
      policy,
    });
    const logger = createLogger('outpost', { level: 'info', write: (line) => void lines.push(JSON.parse(line) as { message: string }) });
    node = await startNode(config, { logger });
    const tenant = await node.stores.configStore.createTenant('acme');
    await node.stores.configStore.addDomain(tenant.id, 'acme.test');
    await node.stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: await hashPassword(PASSWORD) });
    await addDkimKey(node.stores.dkimKeys, { domain: 'acme.test', now: Date.now() });
    return node;
  }

  it('scans, signs and delivers submitted mail from a worker thread, which ends at stop', async () => {
    const running = await start();
    const ids = await Promise.all(['one', 'two', 'three'].map((subject) => submit(running.ports.submission, { from: 'alice@acme.test', to: `bob-${subject}@example.org`, subject })));
    const received = await sink.waitForMessages(3, 30_000);
    expect(received.map((mail) => mail.rcptTo[0]).sort()).toEqual(['bob-one@example.org', 'bob-three@example.org', 'bob-two@example.org']);
    expect(received.every((mail) => mail.data.toString('utf8').includes('DKIM-Signature:'))).toBe(true);
    // The relay's own connection sees what the worker's connection wrote.
    for (const id of ids) {
      const { events } = await messageWithStatus(running, id, 'delivered');
      expect(events.map((event) => event.event)).toEqual(expect.arrayContaining(['received', 'scanned', 'dkim-signed', 'delivered']));
    }
    const started = lines.find((line) => line.message === 'pipeline worker thread started');
    expect(started?.threadId).toBeGreaterThan(0);
    // The worker's counts and observations reach the relay's /metrics (sent a turn's worth at a time).
    const metrics = async (): Promise<string> => {
      const response = await fetch(`http://127.0.0.1:${running.ports.http}/metrics`, { headers: { authorization: `Bearer ${running.operatorToken.token}` } });
      return response.text();
    };
    const deliveries = async () => (await metrics()).split('\n').find((line) => line.startsWith('outpost_delivery_attempt_duration_seconds_count') && line.endsWith(' 3'));
    expect(await waitFor('three delivery attempts on /metrics', deliveries, 10_000)).toBeDefined();
    expect((await metrics()).split('\n').find((line) => line.startsWith('outpost_scan_duration_seconds_count'))).toMatch(/ 3$/);
    await running.stop();
    node = undefined;
    // Stopped on request, not died: no restart.
    expect(lines.some((line) => line.message.startsWith('pipeline worker thread exited'))).toBe(false);
  });

  it('signs with what the configuration says now: a selector set on another connection applies to the next message, not a copy the worker kept', async () => {
    const running = await start();
    await addDkimKey(running.stores.dkimKeys, { domain: 'acme.test', selector: 'second', now: Date.now() });
    const selectorOf = (mail: { data: Buffer }): string | undefined => /\bs=([^;\s]+)/.exec(mail.data.toString('utf8'))?.[1];
    await submit(running.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'before' });
    const [first] = await sink.waitForMessages(1, 30_000);
    expect(selectorOf(first!)).not.toBe('second');
    // The worker has read the user and tenant for the first message; the change comes through the
    // relay's connection, as the API or the CLI would make it.
    const user = await running.stores.configStore.findUserByLogin('alice@acme.test');
    await running.stores.configStore.updateUser(user!.id, { settings: { dkimSelector: 'second' } });
    await submit(running.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'after' });
    const received = await sink.waitForMessages(2, 30_000);
    const after = received.find((mail) => mail.data.toString('utf8').includes('Subject: after'));
    expect(selectorOf(after!)).toBe('second');
  });

  it('locks a spammer from the worker: the ingress refuses the user, and /metrics counts the lock the worker made', async () => {
    const running = await start({}, { spamVerdicts: { lockAfter: 2, windowMinutes: 60 }, reputation: { throttleScore: 1000, rejectScore: 2000 } });
    const gtube = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
    for (const subject of ['offer one', 'offer two']) {
      const id = await submit(running.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject, text: `Cheap offer\n${gtube}\n` });
      await messageWithStatus(running, id, 'quarantined');
    }
    const metricLine = async (): Promise<string | undefined> => {
      const response = await fetch(`http://127.0.0.1:${running.ports.http}/metrics`, { headers: { authorization: `Bearer ${running.operatorToken.token}` } });
      return (await response.text()).split('\n').find((line) => line.startsWith('outpost_lock_events_total{kind="lock"}'));
    };
    expect(await waitFor('the lock event on /metrics', metricLine, 10_000)).toBe('outpost_lock_events_total{kind="lock"} 1');
    const refused = await submit(running.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'after the lock' }).catch((error: unknown) => String(error));
    expect(refused).toMatch(/550 5\.7\.1 .*locked/);
  });

  it('runs the pipeline on the relay thread when queue.pipelineWorker is off', async () => {
    const running = await start({ pipelineWorker: false });
    const id = await submit(running.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'inline' });
    await messageWithStatus(running, id, 'delivered');
    expect(lines.some((line) => line.message === 'pipeline worker thread started')).toBe(false);
  });
});
