// Throughput of the single node, as a ratio against a baseline measured in the same run:
// the same N messages, sent by the same client with the same concurrency, straight to postfix's
// smtp-sink (baseline) and then through Outpost to that sink (submission with STARTTLS + AUTH,
// policy, fsync + queue, scan with the built-in rules, DKIM signing, delivery).
//
//   npx tsx bench/relay-throughput.ts [--messages N] [--concurrency C]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import nodemailer from 'nodemailer';
import { startNode } from '../bin/single-node.js';
import { createLogger } from '../core/log.js';
import { a, mx, startDnsServer } from '../test/helpers/dns-server.js';
import { startSmtpSink } from '../test/helpers/smtp-sink.js';
import { benchConfig, benchMailboxUser } from './support.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '300' }, concurrency: { type: 'string', default: '10' } } });
const N = Number(values.messages);
const C = Number(values.concurrency);
const PASSWORD = 'benchmark password';
const body = 'Hello,\r\n\r\n' + 'This is a benchmark message of ordinary length. '.repeat(40) + '\r\n';

async function sendAll(port: number, auth?: { user: string; pass: string }): Promise<number> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    pool: true,
    maxConnections: C,
    maxMessages: Infinity,
    secure: false,
    ...(auth ? { requireTLS: true, auth } : { ignoreTLS: true }),
    tls: { rejectUnauthorized: false },
  });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      transport.sendMail({ from: 'alice@acme.test', to: `rcpt${i}@example.org`, subject: `bench ${i}`, text: body }),
    ),
  );
  const elapsed = performance.now() - started;
  transport.close();
  return elapsed;
}

async function main(): Promise<void> {
  process.env.OUTPOST_LOG_LEVEL = 'error';
  const sink = await startSmtpSink();
  const dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bench-'));
  try {
    const direct = await sendAll(sink.port);
    await sink.waitForMessages(N, 60_000);

    const config = benchConfig(dataDir, dns.address, sink.port, { policy: { reputation: { throttleScore: 1e9, rejectScore: 1e9 } } });
    const node = await startNode(config, { logger: createLogger('bench', { level: 'error' }) });
    await benchMailboxUser(node.stores, 'alice@acme.test', PASSWORD);

    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const accepted = await sendAll(node.ports.submission, { user: 'alice@acme.test', pass: PASSWORD });
    await sink.waitForMessages(2 * N, 300_000);
    const delivered = performance.now() - started;
    const rssAfter = process.memoryUsage().rss;
    await node.stop();

    const row = (label: string, ms: number) => `${label.padEnd(34)} ${(ms / 1000).toFixed(2).padStart(8)} s  ${((N / ms) * 1000).toFixed(1).padStart(8)} msg/s`;
    process.stdout.write(
      [
        `messages ${N}, client concurrency ${C}`,
        row('baseline: straight to smtp-sink', direct),
        row('through Outpost: all answered 250', accepted),
        row('through Outpost: all delivered', delivered),
        `ratio accepted/baseline            ${(accepted / direct).toFixed(2)}`,
        `ratio delivered/baseline           ${(delivered / direct).toFixed(2)}`,
        `process RSS (bench + node)         ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ${(rssAfter / 2 ** 20).toFixed(0)} MiB after`,
        '',
      ].join('\n'),
    );
  } finally {
    await sink.stop();
    await dns.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
