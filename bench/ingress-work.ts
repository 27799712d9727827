// The ingress's own work per message, without sockets, smtp-server or a load generator: the
// relay thread's CPU for the hooks (MAIL, RCPT, DATA), the admission checks, the DATA path and
// the hand-over to the group commit, on the real single node (`startNode`, its stores, its
// worker threads, delivering to postfix's smtp-sink). Its hooks are called as smtp-server calls
// them, with synthetic sessions of an IP user sending 2 KB messages over kept sessions.
//
//   npm run bench:ingress-work -- [--messages 20000] [--sessions 20] [--rounds 3] [--bursts 3]
//
// Why: bench:ingress measures the whole relay against Haraka, and on this shared 2-core machine
// its relay thread's CPU per message moves by ±15 % between runs of the same build (the loopback
// socket writes and the wake-ups of smtp-source, preemption by the load generator). This bench
// leaves out all of that, so a change of a few per cent in the ingress's own code is visible.
//
// Each round starts one child process per way of running the TypeScript, in alternating order:
// the module hooks that `outpost` runs under (bin/register-typescript.mjs: esbuild, no keepNames)
// and tsx (esbuild with keepNames, which the relay ran under until the fourteenth session). A child
// sends one burst not counted (the JIT warming up), then `bursts` bursts of `messages`, and
// reports the median CPU of its main thread per message (/proc/self/task/<pid>/stat). The figures
// are the medians over rounds.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { startNode } from '../bin/single-node.js';
import { loadConfig } from '../core/config.js';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { testZone } from '../test/helpers/e2e-node.js';
import { relayEnv, relayPorts } from '../test/helpers/relay-process.js';
import { collect, exited, seedBenchRelay, startSmtpSink } from './outpost-child.js';
import { median } from './support.js';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    sessions: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    bursts: { type: 'string', default: '3' },
    child: { type: 'boolean', default: false },
  },
});
const MESSAGES = Number(values.messages);
const SESSIONS = Number(values.sessions);
const ROUNDS = Number(values.rounds);
const BURSTS = Number(values.bursts);

const LOADERS = [
  { name: 'module hooks (outpost)', flags: ['--import', join(ROOT, 'bin', 'register-typescript.mjs')] },
  { name: 'tsx (keepNames)', flags: ['--import', 'tsx'] },
] as const;

/** CPU time of this process's main thread, in microseconds (clock ticks of 10 ms). */
function mainThreadCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

type Hook = (...args: unknown[]) => void;

/** One child: the single node in this process, its submission hooks driven directly. */
async function child(): Promise<void> {
  process.env.OUTPOST_LOG_LEVEL = 'error';
  const servers: SMTPServer[] = [];
  // The ingress's SMTPServer objects, caught as they start listening: their options hold the hooks.
  const listen = SMTPServer.prototype.listen;
  SMTPServer.prototype.listen = function (this: SMTPServer, ...args: unknown[]) {
    servers.push(this);
    return (listen as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof listen;

  const dns = await startDnsServer(testZone());
  const sink = await startSmtpSink('smarthost');
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bench-work-'));
  try {
    // The same data folder as bench:ingress's relay.
    const configFile = await seedBenchRelay(dataDir);
    const env = relayEnv(dataDir, { ...(await relayPorts()), dns: dns.address }, { OUTPOST_CONFIG: configFile, OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}`, OUTPOST_LOG_LEVEL: 'error' });
    const node = await startNode(loadConfig(env, dataDir));
    try {
      const submission = servers.find((server) => (server as unknown as { options: { secure?: boolean } }).options.secure === false);
      if (!submission) throw new Error('the submission listener did not start');
      const hooks = (submission as unknown as { options: Record<'onConnect' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onClose', Hook> }).options;
      const body = Buffer.from(`From: bulk@acme.test\r\nTo: rcpt@example.org\r\nSubject: bench\r\n\r\n${`${'x'.repeat(70)}\r\n`.repeat(27)}`);
      const call = (hook: Hook, ...args: unknown[]) => new Promise<void>((resolve, reject) => hook(...args, (error?: Error | null) => (error ? reject(error) : resolve())));
      let sessionCount = 0;
      const session = async (count: number): Promise<void> => {
        sessionCount += 1;
        const smtpSession = {
          id: `BENCH${String(sessionCount).padStart(11, '0')}`,
          remoteAddress: '127.0.0.1',
          remotePort: 40_000 + sessionCount,
          localAddress: '127.0.0.1',
          localPort: 587,
          clientHostname: '[127.0.0.1]',
          openingCommand: 'EHLO',
          hostNameAppearsAs: 'client.bench.test',
          envelope: { mailFrom: false, rcptTo: [] },
          secure: false,
          transmissionType: 'ESMTP',
        } as unknown as SMTPServerSession;
        await call(hooks.onConnect, smtpSession);
        for (let i = 0; i < count; i++) {
          await call(hooks.onMailFrom, { address: 'bulk@acme.test', args: {} }, smtpSession);
          await call(hooks.onRcptTo, { address: 'rcpt@example.org', args: {} }, smtpSession);
          // smtp-server's DATA stream: the message without its final dot, and whether it grew too big.
          const stream = Object.assign(new PassThrough(), { sizeExceeded: false, byteLength: body.length });
          const answered = call(hooks.onData, stream, smtpSession);
          stream.end(body);
          await answered;
        }
        hooks.onClose(smtpSession);
      };
      const burst = async (): Promise<number> => {
        const before = mainThreadCpuUs();
        await Promise.all(Array.from({ length: SESSIONS }, () => session(Math.ceil(MESSAGES / SESSIONS))));
        return (mainThreadCpuUs() - before) / MESSAGES;
      };
      await burst();
      const samples: number[] = [];
      for (let i = 0; i < BURSTS; i++) samples.push(await burst());
      process.stdout.write(`${JSON.stringify({ cpuUsPerMessage: median(samples), samples })}\n`);
    } finally {
      await node.stop();
    }
  } finally {
    await sink.stop();
    await dns.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function parent(): Promise<void> {
  const results = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? LOADERS : [...LOADERS].reverse();
    for (const loader of order) {
      const args = [...loader.flags, join(ROOT, 'bench', 'ingress-work.ts'), '--child', '--messages', String(MESSAGES), '--sessions', String(SESSIONS), '--bursts', String(BURSTS)];
      const run = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const output = collect(run);
      const code = await exited(run);
      const line = output()
        .split('\n')
        .find((text) => text.startsWith('{"cpuUsPerMessage"'));
      if (code !== 0 || !line) throw new Error(`the ${loader.name} child failed (exit ${code}): ${output().slice(-2000)}`);
      const { cpuUsPerMessage, samples } = JSON.parse(line) as { cpuUsPerMessage: number; samples: number[] };
      process.stderr.write(`round ${round + 1} ${loader.name}: ${cpuUsPerMessage.toFixed(1)} µs a message (bursts: ${samples.map((us) => us.toFixed(1)).join(', ')})\n`);
      results.set(loader.name, [...(results.get(loader.name) ?? []), cpuUsPerMessage]);
    }
  }
  const [hooks, tsx] = LOADERS.map((loader) => median(results.get(loader.name) ?? []));
  console.log(`The ingress's own work: ${MESSAGES} messages of 2 KB over ${SESSIONS} kept sessions per burst, ${BURSTS} bursts after 1 not counted, ${ROUNDS} alternating rounds; CPU of the relay's thread per message, medians`);
  console.log(`${LOADERS[0].name.padEnd(40)} ${(hooks ?? 0).toFixed(1)} µs`);
  console.log(`${LOADERS[1].name.padEnd(40)} ${(tsx ?? 0).toFixed(1)} µs`);
  console.log(`${'module hooks / tsx'.padEnd(40)} ${((hooks ?? 0) / (tsx ?? 1)).toFixed(2)}`);
}

if (values.child) await child();
else await parent();
process.exit(0);
