// Goal: STARTTLS + AUTH over pooled connections (nodemailer's pool) reaches at least 0.9× the
// rate of a bare smtp-server that does the same (STARTTLS, AUTH PLAIN, reads DATA, answers 250
// and forgets), measured in the same run with alternating rounds.
//
// Outpost runs as in production: `outpost start` in a process of its own (bench/outpost-child.ts),
// every admission check, the message stored durably and queued before the 250, and the pipeline
// scanning, DKIM-signing and delivering to a sink behind it. The bare sink runs in a process of
// its own too (bench/tls-auth-sink.ts), and the client, nodemailer's pool, in the bench's: a
// client on the server's own event loop would charge its CPU to the server (until 2026-12-03 both
// servers ran inside the bench process, beside the client). Every burst waits for Outpost's queue
// to drain first. Each server first takes --warmup rounds that are not counted (one by default):
// a server runs for days, and its first bursts are JIT compilation (in Outpost, of four
// isolates). The time is until every message has its 250; the CPU time of each server's process
// over its burst is printed per message.
//
//   npx tsx bench/tls-auth.ts [--messages 1000] [--connections 10] [--rounds 3] [--warmup 1]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { cpuPerMessage, machineBusyShare, machineTimes, startOutpostChild, startScriptChild, threadCpuSeconds } from './outpost-child.js';
import { BODY_2K, line, median, startCountingSink } from './support.js';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { testZone } from '../test/helpers/e2e-node.js';


const { values } = parseArgs({ options: { messages: { type: 'string', default: '1000' }, connections: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' }, warmup: { type: 'string', default: '1' } } });
const N = Number(values.messages);
const C = Number(values.connections);
const ROUNDS = Number(values.rounds);
const WARMUP = Number(values.warmup);
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

interface Server {
  name: string;
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** The bare smtp-server with STARTTLS and AUTH (bench/tls-auth-sink.ts), with Outpost's certificate, in a child process. */
function startBareSink(keyFile: string, certFile: string): Promise<Server> {
  return startScriptChild('bare smtp-server TLS + AUTH sink', 'tls-auth-sink.ts', [keyFile, certFile, USER, PASSWORD]);
}

async function main(): Promise<void> {
  const sink = await startCountingSink();
  const dns = await startDnsServer(testZone());
  const outpost = await startOutpostChild({ smarthostPort: sink.port, dnsAddress: dns.address, mailbox: { identity: USER, password: PASSWORD } });
  const bare = await startBareSink(join(outpost.dataDir, 'tls', 'key.pem'), join(outpost.dataDir, 'tls', 'cert.pem'));
  const servers: Server[] = [bare, { name: 'Outpost (durable, all checks, pipeline running)', port: outpost.port, pid: outpost.pid, stop: () => outpost.stop() }];
  const rates = new Map<string, number[]>(servers.map((server) => [server.name, []]));
  const cpu = new Map<string, number[]>(servers.map((server) => [server.name, []]));
  try {
    for (let round = -WARMUP; round < ROUNDS; round += 1) {
      const counted = round >= 0;
      // Alternating which server goes first; every burst waits for Outpost's queue to drain, so
      // that no server shares the machine with the deliveries of the burst before.
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      const report: string[] = [];
      for (const server of order) {
        await outpost.settle();
        const before = server.pid ? threadCpuSeconds(server.pid) : new Map<number, number>();
        const machineBefore = machineTimes();
        const rate = await send(server.port, round);
        const busy = machineBusyShare(machineBefore, machineTimes());
        const used = server.pid ? cpuPerMessage(server.pid, before, threadCpuSeconds(server.pid), N) : undefined;
        const msPerMessage = used?.totalMs ?? 0;
        const detail = [...(used ? [`main thread ${used.mainMs.toFixed(2)}`] : []), ...(busy === undefined ? [] : [`machine ${(busy * 100).toFixed(0)} % busy`])].join(', ');
        report.push(`${server.name} ${rate.toFixed(0)} msg/s (CPU ${msPerMessage.toFixed(2)} ms a message${detail ? `; ${detail}` : ''})`);
        if (!counted) continue;
        rates.get(server.name)?.push(rate);
        cpu.get(server.name)?.push(msPerMessage);
      }
      process.stdout.write(`${counted ? `round ${round + 1}` : `warm-up ${round + WARMUP + 1} (not counted)`}: ${report.join('; ')}\n`);
    }
  } finally {
    await bare.stop();
    await outpost.stop();
    await sink.stop();
    await dns.stop();
  }
  const rate = (server: Server) => median(rates.get(server.name) ?? []);
  const cpuOf = (server: Server) => median(cpu.get(server.name) ?? []);
  const [baseline, relay] = servers as [Server, Server];
  process.stdout.write(
    [
      `STARTTLS + AUTH over a nodemailer pool of ${C} connections, ${N} messages of 2 KB, ${ROUNDS} alternating rounds after ${WARMUP} not counted, medians; each server in a process of its own`,
      line(baseline.name, `${rate(baseline).toFixed(0)} msg/s, CPU ${cpuOf(baseline).toFixed(2)} ms a message`),
      line(relay.name, `${rate(relay).toFixed(0)} msg/s, CPU ${cpuOf(relay).toFixed(2)} ms a message`),
      line('ratio Outpost / bare (goal >= 0.9)', (rate(relay) / rate(baseline)).toFixed(2)),
      '',
    ].join('\n'),
  );
}

await main();
