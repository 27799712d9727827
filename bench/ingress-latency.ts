// Where a message's time goes at the ingress, as a client sees it and as the machine pays for it:
// S sessions with kept connections (as `bench:ingress -- ` with smtp-source -d) send N messages
// of 2 KB to Outpost (the same child process, IP user and smarthost as bench:ingress), timing
// every command's reply; during the burst the CPU time of each of Outpost's threads is read
// from /proc. It prints the rate, each command's latency (p50, p90, mean) and each thread's
// share of a core and CPU time per message. It compares stages within one run.
//
//   npx tsx bench/ingress-latency.ts [--messages 4000] [--sessions 20]
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { startOutpostChild, threadCpuSeconds } from './outpost-child.js';
import { line, startCountingSink } from './support.js';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { testZone } from '../test/helpers/e2e-node.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '4000' }, sessions: { type: 'string', default: '20' } } });
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);

const COMMANDS = ['MAIL FROM', 'RCPT TO', 'DATA', 'end of data'] as const;
type Command = (typeof COMMANDS)[number];

const MESSAGE =
  'From: <bulk@acme.test>\r\nTo: <rcpt@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench@acme.test>\r\nSubject: ingress latency\r\n\r\n' +
  'This is a benchmark message of ordinary length, about two kilobytes.\r\n'.repeat(28) +
  '.\r\n';

/** One SMTP session over a kept connection: sends its share of the messages, timing each reply. */
async function session(port: number, take: () => boolean, latencies: Map<Command, number[]>): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  let buffered = '';
  let waiting: ((reply: string) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    // A reply is complete at a line "NNN text" (a continuation line has "NNN-").
    const lines = buffered.split('\r\n');
    if (!waiting || !lines.slice(0, -1).some((text) => /^\d{3} /.test(text))) return;
    const reply = buffered;
    buffered = '';
    const done = waiting;
    waiting = undefined;
    done(reply);
  });
  const closed = new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
  const exchange = async (command: Command | undefined, text: string | undefined): Promise<void> => {
    const started = performance.now();
    const reply = new Promise<string>((resolve) => (waiting = resolve));
    if (text !== undefined) socket.write(text);
    const answer = await reply;
    if (command) latencies.get(command)?.push(performance.now() - started);
    if (!/^[23]/.test(answer)) throw new Error(`${command ?? 'greeting'}: ${answer.trim()}`);
  };
  await exchange(undefined, undefined);
  await exchange(undefined, 'EHLO client.bench.test\r\n');
  while (take()) {
    await exchange('MAIL FROM', 'MAIL FROM:<bulk@acme.test>\r\n');
    await exchange('RCPT TO', 'RCPT TO:<rcpt@example.org>\r\n');
    await exchange('DATA', 'DATA\r\n');
    await exchange('end of data', MESSAGE);
  }
  socket.end('QUIT\r\n');
  await closed;
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;

async function main(): Promise<void> {
  const dns = await startDnsServer(testZone());
  const sink = await startCountingSink();
  const outpost = await startOutpostChild({ smarthostPort: sink.port, dnsAddress: dns.address });
  try {
    const pid = outpost.pid;
    const latencies = new Map<Command, number[]>(COMMANDS.map((command) => [command, []]));
    let handed = 0;
    const take = () => handed++ < MESSAGES;
    const before = pid ? threadCpuSeconds(pid) : new Map<number, number>();
    const started = performance.now();
    await Promise.all(Array.from({ length: SESSIONS }, () => session(outpost.port, take, latencies)));
    const seconds = (performance.now() - started) / 1000;
    const after = pid ? threadCpuSeconds(pid) : new Map<number, number>();

    const out = [`${MESSAGES} messages of 2 KB over ${SESSIONS} kept sessions, plain SMTP, IP user`, line('rate', `${(MESSAGES / seconds).toFixed(0)} msg/s`), '', 'reply latency, as the client sees it:'];
    for (const [command, times] of latencies) {
      const sorted = [...times].sort((a, b) => a - b);
      const mean = sorted.reduce((sum, time) => sum + time, 0) / Math.max(1, sorted.length);
      out.push(line(`  ${command}`, `p50 ${quantile(sorted, 0.5).toFixed(2)} ms  p90 ${quantile(sorted, 0.9).toFixed(2)} ms  mean ${mean.toFixed(2)} ms`));
    }
    // Threads by CPU used, the relay's (the process's main thread) named; Node does not name the others.
    const used = [...after].map(([tid, total]) => ({ tid, seconds: total - (before.get(tid) ?? 0) })).filter((thread) => thread.seconds > 0.005);
    used.sort((a, b) => b.seconds - a.seconds);
    out.push('', `CPU of Outpost's threads during the burst (share of one core; CPU time per message):`);
    for (const thread of used) {
      const name = thread.tid === pid ? 'relay (main thread)' : `thread ${thread.tid}`;
      out.push(line(`  ${name}`, `${((thread.seconds / seconds) * 100).toFixed(0)} %  ${((thread.seconds * 1000) / MESSAGES).toFixed(3)} ms`));
    }
    const total = used.reduce((sum, thread) => sum + thread.seconds, 0);
    out.push(line('  whole process', `${((total / seconds) * 100).toFixed(0)} %  ${((total * 1000) / MESSAGES).toFixed(3)} ms`));
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await outpost.stop();
    await sink.stop();
    await dns.stop();
  }
}

await main();
