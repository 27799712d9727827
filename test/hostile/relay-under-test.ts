// The real `outpost start` as a child process, for tests that try to break it from outside: its
// own data folder and config file (small timeouts, permissive reputation so that a series of rude
// clients from 127.0.0.1 does not lock the well-behaved one out), a loopback DNS server, postfix's
// smtp-sink as the smarthost, and one tenant with a mailbox user. `proveHealthy` checks that the
// process still runs, sends an ordinary message through it and waits for the sink to have it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { a, mx, startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { waitFor } from '../helpers/net.js';
import { outpost, relayEnv, relayPorts, startRelay, type RelayPorts, type RelayProcess } from '../helpers/relay-process.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';

export const PASSWORD = 'a good long password';
export const USER = 'alice@acme.test';

export interface RelayUnderTest {
  ports: RelayPorts;
  relay: RelayProcess;
  sink: SmtpSink;
  env: NodeJS.ProcessEnv;
  /** Fails if the process has exited, or if it logged an unhandled rejection or a failed session. */
  assertAlive(): void;
  /** assertAlive, then an ordinary message from USER must reach the sink. */
  proveHealthy(subject: string): Promise<void>;
  stop(): Promise<void>;
}

/** Lines the relay must never log while strangers poke at it. */
/** The bearer token /metrics wants from the tests. */
export const METRICS_TOKEN = 'hostile-test-metrics-token';

const NEVER = /unhandled promise rejection|session failed|Emitted 'error' event|Unhandled 'error' event/;

export async function startRelayUnderTest(config: Record<string, unknown> = {}): Promise<RelayUnderTest> {
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-hostile-'));
  const ports = await relayPorts();
  const sink = await startSmtpSink();
  const dns: DnsServer = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
  ports.dns = dns.address;
  const configFile = join(dataDir, 'outpost.config.json');
  const { smtp, policy, ...rest } = config;
  await writeFile(
    configFile,
    JSON.stringify({
      ...rest,
      smtp: { socketTimeoutSeconds: 2, closeTimeoutSeconds: 2, ...(smtp as object) },
      policy: {
        reputation: { throttleScore: 100_000, rejectScore: 200_000 },
        authFailure: { perIp: 100_000, perUser: 100_000, perConnection: 3 },
        ...(policy as object),
      },
    }),
  );
  const env = relayEnv(dataDir, ports, { OUTPOST_CONFIG: configFile, OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}`, OUTPOST_LOG_LEVEL: 'error', OUTPOST_METRICS_TOKEN: METRICS_TOKEN });
  await outpost(env, ['tenant', 'add', 'acme']);
  await outpost(env, ['domain', 'add', '--tenant', 'acme', 'acme.test']);
  await outpost(env, ['user', 'add', '--tenant', 'acme', USER, '--password-stdin'], PASSWORD + '\n');
  const relay = await startRelay(env);

  const assertAlive = (): void => {
    if (relay.child.exitCode !== null || relay.child.signalCode !== null) throw new Error(`the relay exited (${relay.child.exitCode ?? relay.child.signalCode}): ${relay.output().slice(-3000)}`);
    const bad = NEVER.exec(relay.output());
    if (bad) throw new Error(`the relay logged "${bad[0]}": ${relay.output().slice(-3000)}`);
  };

  return {
    ports,
    relay,
    sink,
    env,
    assertAlive,
    async proveHealthy(subject) {
      assertAlive();
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submission, secure: false, requireTLS: true, auth: { user: USER, pass: PASSWORD }, tls: { rejectUnauthorized: false } });
      try {
        await transport.sendMail({ from: USER, to: 'bob@example.org', subject, text: `Body of ${subject}.` });
      } finally {
        transport.close();
      }
      await waitFor(`"${subject}" at the sink`, async () => (await sink.messages().catch(() => [])).some((m) => m.data.toString('latin1').includes(`Subject: ${subject}\n`)), 20_000);
      assertAlive();
    },
    async stop() {
      relay.child.kill('SIGKILL');
      await relay.exited;
      await Promise.all([sink.stop(), dns.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
