// The single node end to end, as an operator runs it: `outpost start`, the CLI, a real client,
// postfix's smtp-sink as the smarthost. Includes SIGKILL between the 250 and the delivery.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outpost, relayEnv, relayPorts, startRelay, type RelayPorts } from '../helpers/relay-process.js';
import { freePort, waitFor } from '../helpers/net.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { a, mx, startDnsServer, type DnsServer } from '../helpers/dns-server.js';

const PASSWORD = 'a good long password';

let dataDir: string;
let ports: RelayPorts;
let sink: SmtpSink;
let dns: DnsServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'outpost-node-'));
  ports = await relayPorts();
  sink = await startSmtpSink();
  // Sender and recipient domains must resolve (valid sender, recipient validity).
  dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
  ports.dns = dns.address;
  const env = relayEnv(dataDir, ports);
  await outpost(env, ['tenant', 'add', 'acme']);
  await outpost(env, ['domain', 'add', '--tenant', 'acme', 'acme.test']);
  await outpost(env, ['user', 'add', '--tenant', 'acme', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
});

afterAll(async () => {
  await sink.stop();
  await dns.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function send(port: number, subject: string): Promise<string> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    auth: { user: 'alice@acme.test', pass: PASSWORD },
    tls: { rejectUnauthorized: false },
  });
  const info = await transport.sendMail({
    from: 'alice@acme.test',
    to: 'bob@example.org',
    subject,
    text: `Body of ${subject}\n.\nwith a lone dot line and a long line ${'x'.repeat(1200)}`,
  });
  transport.close();
  const id = /queued as (\S+)/.exec(info.response)?.[1];
  if (!id) throw new Error(`no queue id in ${info.response}`);
  return id;
}

async function history(env: NodeJS.ProcessEnv, id: string): Promise<{ message: { status: string }; events: Array<{ event: string }> }> {
  return JSON.parse(await outpost(env, ['message', 'show', id, '--json'])) as { message: { status: string }; events: Array<{ event: string }> };
}

describe('outpost start', () => {
  it('relays a submitted message to the smarthost exactly once, and logs its history', async () => {
    const metricsToken = 'scraper-token-0123456789';
    const env = relayEnv(dataDir, ports, { OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}`, OUTPOST_METRICS_TOKEN: metricsToken });
    const relay = await startRelay(env);
    try {
      expect(relay.output()).toContain(`smtp://127.0.0.1:${ports.submission}`);
      expect(relay.output()).toMatch(/operator token  op_/);
      const health = await fetch(`http://127.0.0.1:${ports.http}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });

      const id = await send(ports.submission, 'first');
      const [message] = await sink.waitForMessages(1, 20_000);
      // Bounce validation is on by default: the return path carries a BATV tag.
      expect(message?.mailFrom).toMatch(/^prvs=\d{4}[0-9a-f]{6}=alice@acme\.test$/);
      expect(message?.rcptTo).toEqual(['bob@example.org']);
      const text = message?.data.toString('utf8') ?? '';
      expect(text).toContain(`with ESMTPSA id ${id}`);
      expect(text).toContain('Subject: first');
      expect(text).toContain('\n.\nwith a lone dot line');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await sink.messages()).toHaveLength(1);
      const log = await history(env, id);
      expect(log.message.status).toBe('delivered');
      expect(log.events.map((e) => e.event)).toEqual(expect.arrayContaining(['received', 'delivered']));

      // The panel at /, and Prometheus metrics that count what just happened.
      expect(await (await fetch(`http://127.0.0.1:${ports.http}/`)).text()).toMatch(/<title>[^<]*Outpost/);
      expect((await fetch(`http://127.0.0.1:${ports.http}/metrics`)).status).toBe(401);
      const metrics = await (await fetch(`http://127.0.0.1:${ports.http}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
      expect(metrics).toMatch(/^outpost_messages_accepted_total\{via="auth"\} 1$/m);
      expect(metrics).toMatch(/^outpost_smtp_sessions_total\{listener="submission"\} 1$/m);
      expect(metrics).toMatch(/^outpost_message_events\{event="delivered"\} 1$/m);
      expect(metrics).toMatch(/^outpost_queue_messages\{queue="deliver",state="visible"\} 0$/m);

      // SIGTERM with a transaction in flight: new clients get 421, the transaction finishes
      // with 250, the process exits 0 and the port is closed.
      const inFlight = await RawSmtp.open(ports.submission);
      const client = inFlight.client;
      await client.command('EHLO client.test');
      await client.startTls();
      await client.command('EHLO client.test');
      expect(await client.authPlain('alice@acme.test', PASSWORD)).toMatch(/^235 /);
      expect(await client.command('MAIL FROM:<alice@acme.test>')).toMatch(/^250 /);
      expect(await client.command('RCPT TO:<carol@example.org>')).toMatch(/^250 /);
      relay.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const late = await RawSmtp.open(ports.submission);
      expect(late.greeting).toMatch(/^421 4\.3\.2 .*shutting down/);
      late.client.close();
      expect(await client.command('DATA')).toMatch(/^354 /);
      client.write('From: alice@acme.test\r\nSubject: during shutdown\r\n\r\nstill delivered\r\n.\r\n');
      expect(await client.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(await relay.exited).toBe(0);
      client.close();
      await expect(send(ports.submission, 'after stop')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      relay.child.kill('SIGKILL');
    }
  });

  it('delivers after a restart every message answered 250 before a SIGKILL', async () => {
    // The smarthost is down at first, so the message is still queued when the relay is killed.
    const downPort = await freePort();
    const env1 = relayEnv(dataDir, ports, { OUTPOST_RELAY_HOST: `127.0.0.1:${downPort}`, OUTPOST_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1,1,1' });
    const before = (await sink.messages()).length;
    const relay1 = await startRelay(env1);
    let ids: string[];
    try {
      ids = [await send(ports.submission, 'kill-1'), await send(ports.submission, 'kill-2')];
      // Kill one message right after its 250, before the pipeline could touch it.
      ids.push(await send(ports.submission, 'kill-3'));
      relay1.child.kill('SIGKILL');
      await relay1.exited;
    } finally {
      relay1.child.kill('SIGKILL');
    }
    const env2 = relayEnv(dataDir, ports, { OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}`, OUTPOST_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1,1,1' });
    const relay2 = await startRelay(env2);
    try {
      // The message accepted during the earlier SIGTERM drain is delivered now too: wait for ours.
      const killSubjects = async (): Promise<string[]> =>
        // A dump still being written does not parse yet: look again on the next poll.
        (await sink.messages().catch(() => []))
          .map((m) => /Subject: (\S+)/.exec(m.data.toString())?.[1] ?? '')
          .filter((subject) => subject.startsWith('kill-'))
          .sort();
      await waitFor('the three messages in the sink', async () => ((await killSubjects()).length >= 3 ? true : undefined), 30_000);
      expect(await killSubjects()).toEqual(['kill-1', 'kill-2', 'kill-3']);
      expect((await sink.messages()).length).toBeGreaterThanOrEqual(before + 3);
      for (const id of ids) {
        const deadline = Date.now() + 10_000;
        while ((await history(env2, id)).message.status !== 'delivered' && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        expect((await history(env2, id)).message.status).toBe('delivered');
      }
    } finally {
      relay2.child.kill('SIGTERM');
      await relay2.exited;
    }
    // Two relay starts, each booting its pipeline thread, and four CLI runs: slow on a busy machine.
  }, 120_000);
});
