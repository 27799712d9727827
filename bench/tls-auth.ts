// Goal: STARTTLS + AUTH over pooled connections (nodemailer's pool) reaches at least 0.9× the
// rate of a bare smtp-server that does the same (STARTTLS, AUTH PLAIN, reads DATA, answers 250
// and forgets), measured in the same run with alternating rounds.
//
// Outpost runs as in production: every admission check, the message stored durably and queued
// before the 250, and the pipeline scanning, signing and delivering to postfix's smtp-sink at
// the same time. The time is until every message has its 250.
//
//   npx tsx bench/tls-auth.ts [--messages 1000] [--connections 10] [--rounds 3]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { SMTPServer } from 'smtp-server';

process.env.OUTPOST_LOG_LEVEL ??= 'error';
const { startNode } = await import('../bin/single-node.js');
const { createLogger } = await import('../core/log.js');
const { a, mx, startDnsServer } = await import('../test/helpers/dns-server.js');
const { BODY_2K, benchConfig, benchMailboxUser, line, median, startCountingSink } = await import('./support.js');

const { values } = parseArgs({ options: { messages: { type: 'string', default: '1000' }, connections: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' } } });
const N = Number(values.messages);
const C = Number(values.connections);
const ROUNDS = Number(values.rounds);
const USER = 'alice@acme.test';
const PASSWORD = 'benchmark password';

/** Sends N messages over a nodemailer pool of C connections with STARTTLS + AUTH; resolves with msg/s. */
async function send(port: number, round: number): Promise<number> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    pool: true,
    maxConnections: C,
    maxMessages: Infinity,
    secure: false,
    requireTLS: true,
    auth: { user: USER, pass: PASSWORD },
    tls: { rejectUnauthorized: false },
    // The client's sockets without Nagle's algorithm: nodemailer leaves it on, and each message's
    // end-of-data dot then waited for the server's delayed acknowledgement (up to 40 ms), a floor
    // that both servers hit alike and that hid the difference between them.
    getSocket: (_options: unknown, callback: (error: Error | null, socketOptions?: { connection: Socket }) => void) => {
      const socket = connect({ host: '127.0.0.1', port, noDelay: true });
      socket.once('error', (error) => callback(error));
      socket.once('connect', () => callback(null, { connection: socket }));
    },
  } as SMTPPool.Options);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: N }, (_, index) =>
      transport.sendMail({ from: USER, to: `rcpt${index}@example.org`, subject: `tls-auth bench ${round}/${index}`, text: BODY_2K }),
    ),
  );
  const elapsed = performance.now() - started;
  transport.close();
  return (N / elapsed) * 1000;
}

/** A bare smtp-server with STARTTLS and AUTH, with Outpost's certificate; DATA is read and dropped. */
async function startBareSink(key: string, cert: string): Promise<{ port: number; stop(): Promise<void> }> {
  const server = new SMTPServer({
    key,
    cert,
    authMethods: ['PLAIN', 'LOGIN'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    onAuth(auth, _session, callback) {
      if (auth.username === USER && auth.password === PASSWORD) callback(null, { user: auth.username });
      else callback(new Error('Invalid username or password'));
    },
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => callback());
    },
  });
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  return { port, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function main(): Promise<void> {
  const sink = await startCountingSink();
  const dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bench-tls-'));
  const config = benchConfig(dataDir, dns.address, sink.port, { policy: { reputation: { throttleScore: 1e9, rejectScore: 1e9 } } });
  const node = await startNode(config, { logger: createLogger('bench', { level: 'error' }) });
  await benchMailboxUser(node.stores, USER, PASSWORD);
  const bare = await startBareSink(await readFile(join(dataDir, 'tls', 'key.pem'), 'utf8'), await readFile(node.certPath, 'utf8'));
  const outpostRates: number[] = [];
  const bareRates: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      bareRates.push(await send(bare.port, round));
      outpostRates.push(await send(node.ports.submission, round));
      process.stdout.write(`round ${round + 1}: bare smtp-server ${bareRates.at(-1)?.toFixed(0)} msg/s, Outpost ${outpostRates.at(-1)?.toFixed(0)} msg/s\n`);
    }
  } finally {
    await bare.stop();
    await node.stop();
    await sink.stop();
    await dns.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  const outpost = median(outpostRates);
  const baseline = median(bareRates);
  process.stdout.write(
    [
      `STARTTLS + AUTH over a nodemailer pool of ${C} connections, ${N} messages of 2 KB, ${ROUNDS} alternating rounds, medians`,
      line('bare smtp-server TLS + AUTH sink', `${baseline.toFixed(0)} msg/s`),
      line('Outpost (durable, all checks, pipeline running)', `${outpost.toFixed(0)} msg/s`),
      line('ratio Outpost / bare (goal >= 0.9)', (outpost / baseline).toFixed(2)),
      '',
    ].join('\n'),
  );
}

await main();
