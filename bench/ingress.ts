// Ingress throughput of the single node, side by side with Haraka and postfix's smtp-sink, in one
// run on one machine: postfix's smtp-source sends the same burst (20 sessions, 2 KB messages,
// one recipient) to each server in turn, with connection reuse (-d) and with a new connection per
// message (smtp-source's default), round after round; the medians and the ratios
// Outpost/Haraka are printed.
//
//   npm run bench:ingress -- [--messages 3000] [--rounds 3] [--warmup 1] [--sessions 20] [--size 2048]
//                            [--profile DIR] [--servers outpost,haraka,smtp-server,smtp-sink]
//
// The servers:
// - Outpost: `outpost start` (a child process, as an operator runs it) on a fresh data folder,
//   an IP user for 127.0.0.1 with limits set high, every admission check of the default
//   configuration, durable before 250, the pipeline running and delivering to an smtp-sink
//   smarthost (OUTPOST_RELAY_HOST). Between rounds the bench waits for its queue to drain, so
//   that each round starts alike (every server's burst waits for it, so that no server shares
//   the machine with Outpost's deliveries); the queue absorbs the burst within a round.
// - Haraka (HARAKA_VERSION, installed on demand into bench/.haraka/, never a dependency of
//   Outpost), single process, with its queue/discard plugin: it accepts and throws away.
// - smtp-server (bench/smtp-server-sink.ts): the SMTP library Outpost's ingress is built on,
//   bare, in a process of its own, dropping every message: the floor of that library, with no
//   check, no counter and nothing stored (not in the default list; name it in --servers).
// - postfix's smtp-sink: C, stores nothing: the ceiling of the machine and of smtp-source.
//
// Every server first takes --warmup rounds of the same bursts that are not counted (one by
// default): a relay runs for days, and a burst or two after its start is JIT compilation, in
// Outpost of four isolates (the relay's thread and three workers), each compiling its own code.
//
// Each burst also reads the CPU time of the server's process (all threads, /proc on Linux) and
// prints it per message: a server can be slow because it waits, or because it works. And where
// the main thread was during the burst (/proc/PID/task/PID/schedstat): on a CPU, waiting for one
// (preempted, mostly by smtp-source woken on its core), or neither (asleep, every session waiting).
// And how busy the whole machine was (/proc/stat, every process and the kernel's loopback work):
// a main thread on a CPU nearly all the burst while the machine still has idle time is the limit
// of a server that runs its sessions on one thread; a machine near 100 % is the limit of any.
//
// --profile DIR runs Outpost under `node --cpu-prof` and leaves the .cpuprofile in DIR, with a
// summary of the functions with the most self time. BENCH_NODE_FLAGS (space-separated) go to
// Outpost's node as well, e.g. `--perf-basic-prof` to read JavaScript frames in `perf report`
// after `perf record -a -g` over a burst.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { burstSchedule, collect, cpuPerMessage, machineBusyShare, machineTimes, mainThreadSchedule, mainThreadTimes, runSmtpSource, SMTP_SINK, SMTP_SOURCE, startOutpostChild, startScriptChild, startSmtpSink, stopChild, threadCpuSeconds, type BurstCpu, type BurstSchedule } from './outpost-child.js';
import { median } from './support.js';
import { summariseProfileFile } from './profile-summary.js';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { testZone } from '../test/helpers/e2e-node.js';
import { freePort, waitForGreeting } from '../test/helpers/net.js';

const HARAKA_VERSION = '3.3.4';
const ROOT = join(import.meta.dirname, '..');
const HARAKA_PREFIX = join(ROOT, 'bench', '.haraka');
const HARAKA_BIN = join(HARAKA_PREFIX, 'node_modules', 'Haraka', 'bin', 'haraka');

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    sessions: { type: 'string', default: '20' },
    size: { type: 'string', default: '2048' },
    profile: { type: 'string' },
    servers: { type: 'string', default: 'outpost,haraka,smtp-sink' },
  },
});
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const WARMUP = Number(values.warmup);
const SESSIONS = Number(values.sessions);
const SIZE = Number(values.size);
const SERVERS = (values.servers ?? '').split(',').filter(Boolean);

interface Server {
  name: string;
  port: number;
  /** Called before each round: waits until the server is idle again. */
  settle?(): Promise<void>;
  stop(): Promise<void>;
  /** The server's process, whose CPU time each burst measures (Linux /proc). */
  pid?: number;
}

/** A bare smtp-server that drops every message (bench/smtp-server-sink.ts), in a child process. */
function startSmtpServerSink(): Promise<Server> {
  return startScriptChild('bare smtp-server (drops)', 'smtp-server-sink.ts');
}

/** Haraka, installed into bench/.haraka on first use (npm install --prefix … --no-save). */
async function startHaraka(): Promise<Server> {
  if (!existsSync(HARAKA_BIN)) {
    process.stderr.write(`installing Haraka ${HARAKA_VERSION} into ${HARAKA_PREFIX} …\n`);
    await mkdir(HARAKA_PREFIX, { recursive: true });
    const install = spawnSync('npm', ['install', '--prefix', HARAKA_PREFIX, `Haraka@${HARAKA_VERSION}`, '--no-save', '--no-audit', '--no-fund'], { encoding: 'utf8' });
    if (install.status !== 0 || !existsSync(HARAKA_BIN)) throw new Error(`cannot install Haraka ${HARAKA_VERSION}: ${install.stderr}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-haraka-'));
  const port = await freePort();
  // Haraka's shipped configuration (connection.ini etc. are needed), then ours on top.
  await cp(join(HARAKA_PREFIX, 'node_modules', 'Haraka', 'config'), join(dir, 'config'), { recursive: true });
  await mkdir(join(dir, 'plugins'));
  // Relaying for 127.0.0.1 (as Outpost's IP user), then queue/discard: accept, store nothing.
  // No reverse DNS lookup per connection (Outpost makes none either; offline it would time out).
  await writeFile(
    join(dir, 'plugins', 'bench_relay.js'),
    `exports.hook_lookup_rdns = function (next) { next(OK, 'localhost'); };\n` +
      `exports.hook_connect = function (next, connection) { connection.relaying = true; next(); };\n` +
      `exports.hook_rcpt = function (next) { next(OK); };\n`,
  );
  await writeFile(join(dir, 'config', 'plugins'), 'bench_relay\nqueue/discard\n');
  await writeFile(join(dir, 'config', 'smtp.ini'), `listen=127.0.0.1:${port}\nnodes=0\n`);
  await writeFile(join(dir, 'config', 'log.ini'), '[main]\nlevel=error\n');
  await writeFile(join(dir, 'config', 'me'), 'haraka.bench.test\n');
  const child = spawn(process.execPath, [HARAKA_BIN, '-c', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, YES_REALLY_DO_DISCARD: '1' },
  });
  const output = collect(child);
  await waitForGreeting('Haraka', port, { timeoutMs: 60_000, gone: () => (child.exitCode === null ? undefined : `Haraka exited ${child.exitCode}: ${output()}`) });
  return {
    name: `Haraka ${HARAKA_VERSION} (discard)`,
    port,
    pid: child.pid,
    stop: async () => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One burst: smtp-source's wall time, in msg/s. Any refusal makes smtp-source exit non-zero. */
async function burst(server: Server, reuse: boolean): Promise<number> {
  const seconds = await runSmtpSource(server.port, { sessions: SESSIONS, messages: MESSAGES, size: SIZE, reuse }).catch((error: unknown) => {
    throw new Error(`${server.name}: ${error instanceof Error ? error.message : String(error)}`);
  });
  return MESSAGES / seconds;
}

/** For each thread's .cpuprofile: its busy share by second, and where the busy seconds went (bench/profile-summary.ts). */
async function profileSummary(dir: string): Promise<string> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile'));
  const parts: string[] = [];
  for (const file of files) parts.push(`${file}\n${await summariseProfileFile(join(dir, file), { top: 20 })}`);
  return parts.join('\n\n');
}

/** What one burst measured, beside its rate (each part undefined where /proc cannot tell). */
interface BurstMeasures {
  cpu?: BurstCpu;
  schedule?: BurstSchedule;
  /** The whole machine's busy share. */
  busy?: number;
}

/**
 * The main thread's CPU a message (user space and kernel apart), where it was during the burst
 * (on a CPU nearly all of it when its CPU is the limit; otherwise waiting for a CPU, preempted by
 * the load generator above all, or asleep, every session waiting for its client or a commit), and
 * how busy the machine was; for one burst, or the medians of several.
 */
function measuresText({ cpu, schedule, busy }: BurstMeasures): string {
  const parts: string[] = [];
  if (cpu) {
    const split = cpu.mainUserMs !== undefined && cpu.mainSystemMs !== undefined ? `: user ${cpu.mainUserMs.toFixed(2)}, kernel ${cpu.mainSystemMs.toFixed(2)}` : '';
    parts.push(`main thread ${cpu.mainMs.toFixed(2)}${split}`);
  }
  if (schedule) parts.push(`main thread on a CPU ${(schedule.runningShare * 100).toFixed(0)} % of the burst, waiting for one ${(schedule.waitingShare * 100).toFixed(0)} %, preempted ${schedule.preemptionsPerMessage.toFixed(2)} times a message`);
  if (busy !== undefined) parts.push(`machine ${(busy * 100).toFixed(0)} % busy`);
  return parts.join('; ');
}

/** The medians of several bursts' measures, field by field (a field measured in none stays undefined). */
function medianMeasures(runs: BurstMeasures[]): BurstMeasures {
  const of = (values: Array<number | undefined>): number | undefined => {
    const known = values.filter((value): value is number => value !== undefined);
    return known.length > 0 ? median(known) : undefined;
  };
  const cpus = runs.flatMap((run) => (run.cpu ? [run.cpu] : []));
  const schedules = runs.flatMap((run) => (run.schedule ? [run.schedule] : []));
  const user = of(cpus.map((cpu) => cpu.mainUserMs));
  const system = of(cpus.map((cpu) => cpu.mainSystemMs));
  return {
    cpu: cpus.length > 0 ? { totalMs: median(cpus.map((cpu) => cpu.totalMs)), mainMs: median(cpus.map((cpu) => cpu.mainMs)), ...(user !== undefined && system !== undefined ? { mainUserMs: user, mainSystemMs: system } : {}) } : undefined,
    schedule: schedules.length > 0 ? { runningShare: median(schedules.map((one) => one.runningShare)), waitingShare: median(schedules.map((one) => one.waitingShare)), preemptionsPerMessage: median(schedules.map((one) => one.preemptionsPerMessage)) } : undefined,
    busy: of(runs.map((run) => run.busy)),
  };
}

async function main(): Promise<void> {
  if (!existsSync(SMTP_SOURCE) || !existsSync(SMTP_SINK)) throw new Error('needs postfix\'s smtp-source and smtp-sink (Debian package postfix)');
  if (values.profile) await mkdir(values.profile, { recursive: true });
  const started: Server[] = [];
  const dns = await startDnsServer(testZone());
  try {
    const servers: Server[] = [];
    for (const name of SERVERS) {
      if (name === 'outpost') {
        const smarthost = await startSmtpSink('smarthost');
        started.push(smarthost);
        const nodeFlags = [...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []), ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)];
        servers.push({ name: 'Outpost', ...(await startOutpostChild({ smarthostPort: smarthost.port, dnsAddress: dns.address, nodeFlags })) });
      } else if (name === 'haraka') servers.push(await startHaraka());
      else if (name === 'smtp-server') servers.push(await startSmtpServerSink());
      else if (name === 'smtp-sink') servers.push({ ...(await startSmtpSink('smtp-sink')), name: 'postfix smtp-sink' });
      else throw new Error(`unknown server ${name}`);
      started.push(servers[servers.length - 1] as Server);
    }
    // Each counted burst's rate and measures, by server and mode.
    const results = new Map<string, Array<BurstMeasures & { rate: number }>>();
    const key = (server: Server, reuse: boolean): string => `${server.name}|${reuse}`;
    for (let round = -WARMUP; round < ROUNDS; round += 1) {
      const counted = round >= 0;
      for (const reuse of [true, false]) {
        // Alternate the order from round to round, so no server always runs first.
        const order = round % 2 === 0 ? servers : [...servers].reverse();
        for (const server of order) {
          // Every server waits for Outpost's queue to drain, not only Outpost: its pipeline
          // delivering the previous burst would otherwise take CPU from the next server's burst.
          for (const each of servers) await each.settle?.();
          const before = server.pid ? threadCpuSeconds(server.pid) : new Map<number, number>();
          const mainBefore = server.pid ? mainThreadTimes(server.pid) : undefined;
          const scheduleBefore = server.pid ? mainThreadSchedule(server.pid) : undefined;
          const machineBefore = machineTimes();
          const rate = await burst(server, reuse);
          const measures: BurstMeasures = {
            busy: machineBusyShare(machineBefore, machineTimes()),
            cpu: server.pid ? cpuPerMessage(server.pid, before, threadCpuSeconds(server.pid), MESSAGES, { before: mainBefore, after: mainThreadTimes(server.pid) }) : undefined,
            schedule: server.pid ? burstSchedule(scheduleBefore, mainThreadSchedule(server.pid), MESSAGES / rate, MESSAGES) : undefined,
          };
          const detail = measuresText(measures);
          const cpuText = measures.cpu ? ` (CPU ${measures.cpu.totalMs.toFixed(2)} ms a message, ${detail})` : detail ? ` (${detail})` : '';
          const label = counted ? `round ${round + 1}` : `warm-up ${round + WARMUP + 1} (not counted)`;
          process.stderr.write(`${label} ${reuse ? 'reuse' : 'new connection'} ${server.name}: ${rate.toFixed(0)} msg/s${cpuText}\n`);
          if (counted) results.set(key(server, reuse), [...(results.get(key(server, reuse)) ?? []), { rate, ...measures }]);
        }
      }
    }
    const med = (server: Server, reuse: boolean) => median((results.get(key(server, reuse)) ?? []).map((run) => run.rate));
    const out: string[] = [
      `smtp-source -s ${SESSIONS} -l ${SIZE} -m ${MESSAGES}, ${ROUNDS} rounds after ${WARMUP} not counted; median msg/s`,
      '',
      '| server | connection reuse (-d) | new connection per message |',
      '|---|---|---|',
      ...servers.map((server) => `| ${server.name} | ${med(server, true).toFixed(0)} | ${med(server, false).toFixed(0)} |`),
    ];
    const outpost = servers.find((server) => server.name === 'Outpost');
    const haraka = servers.find((server) => server.name.startsWith('Haraka'));
    if (outpost && haraka) {
      out.push(`| **Outpost / Haraka** | **${(med(outpost, true) / med(haraka, true)).toFixed(2)}×** | **${(med(outpost, false) / med(haraka, false)).toFixed(2)}×** |`);
    }
    // CPU per message: how much of the machine each message costs, whatever the rate was.
    const cpuCell = (server: Server, reuse: boolean): string => {
      const medians = medianMeasures(results.get(key(server, reuse)) ?? []);
      return medians.cpu ? `${medians.cpu.totalMs.toFixed(2)} ms (${measuresText(medians)})` : '—';
    };
    const measured = servers.filter((server) => (results.get(key(server, true)) ?? []).some((run) => run.cpu));
    if (measured.length > 0) {
      out.push('', 'CPU time of the server\'s process per message during the burst (all its threads), median:', '', '| server | connection reuse (-d) | new connection per message |', '|---|---|---|');
      for (const server of measured) out.push(`| ${server.name} | ${cpuCell(server, true)} | ${cpuCell(server, false)} |`);
    }
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    for (const server of started.reverse()) await server.stop().catch((error: unknown) => process.stderr.write(`stopping ${server.name}: ${String(error)}\n`));
    await dns.stop();
  }
  if (values.profile) process.stdout.write(`\nCPU profile of Outpost (self time):\n${await profileSummary(values.profile)}\n`);
}

await main();
