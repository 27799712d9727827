// Outpost as the benchmarks that drive it over the network start it: `outpost start` as a child
// process (as an operator runs it, as test/helpers/relay-process.ts starts it), on a fresh data
// folder with an IP user for 127.0.0.1 whose limits are set high but on, delivering to a given
// smarthost; and the CPU time of a process's threads, read from /proc (Linux).
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalStores } from '../bin/local-stores.js';
import { parseConfig } from '../core/config.js';
import { addDkimKey } from '../core/dkim/keys.js';
import { hashPassword, parseIdentity } from '../core/identity.js';
import { freePort, waitForGreeting } from '../test/helpers/net.js';
import { relayEnv, relayPorts } from '../test/helpers/relay-process.js';

const ROOT = join(import.meta.dirname, '..');

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await done;
  clearTimeout(timer);
}

export function collect(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.on('error', (error) => (output += `\n${error.message}`));
  return () => output;
}

/** CPU seconds thread `tid` of `pid` has used so far, in user space and in the kernel; throws where /proc cannot tell. */
function taskTimes(pid: number, tid: number): { user: number; system: number } {
  const ticks = 100; // USER_HZ: /proc counts in hundredths of a second on Linux.
  // The fields after "pid (comm) ": utime and stime are the 12th and 13th of them.
  const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { user: Number(fields[11]) / ticks, system: Number(fields[12]) / ticks };
}

/** CPU seconds used so far by each thread of `pid` (utime + stime), by thread id; empty where /proc cannot tell. */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const seconds = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const { user, system } = taskTimes(pid, Number(tid));
        seconds.set(Number(tid), user + system);
      } catch {
        // The thread ended meanwhile.
      }
    }
  } catch {
    // No /proc (not Linux), or the process is gone.
  }
  return seconds;
}

/**
 * Seconds each thread of `pid` spent waiting for a CPU while runnable (the second field of
 * /proc/PID/task/TID/schedstat): a thread short of 100 % busy that waits here lacks a core, not
 * work; one that waits neither here nor on the CPU is blocked (I/O, locks) or idle.
 */
export function threadRunqueueSeconds(pid: number): Map<number, number> {
  const seconds = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const fields = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ');
        seconds.set(Number(tid), Number(fields[1]) / 1e9);
      } catch {
        // The thread ended meanwhile, or no schedstat (a kernel without CONFIG_SCHED_INFO).
      }
    }
  } catch {
    // No /proc (not Linux), or the process is gone.
  }
  return seconds;
}

export interface OutpostChild {
  /** The submission port (plain SMTP, then STARTTLS; the IP user needs no AUTH). */
  port: number;
  /** Its data folder (the TLS key and certificate it made are in `tls/`). */
  dataDir: string;
  pid: number | undefined;
  /** Waits until the queue is empty (at most five minutes). */
  settle(): Promise<void>;
  stop(): Promise<void>;
  /** What the process wrote to stdout and stderr so far (e.g. node's --trace-gc lines). */
  output(): string;
}

export interface OutpostChildOptions {
  smarthostPort: number;
  dnsAddress: string;
  /** Flags for node (e.g. --cpu-prof); by default BENCH_NODE_FLAGS. */
  nodeFlags?: string[];
  /** A mailbox user of the bench tenant that logs in with this password, and a DKIM key for acme.test that signs its mail. */
  mailbox?: { identity: string; password: string };
}

/**
 * The data folder of a relay as the ingress benches run it: a config file with the limits set
 * high, not off (every RCPT still reserves in the per-minute, per-hour and
 * distinct-recipients-per-day windows), a tenant for acme.test, and an IP user for 127.0.0.1;
 * with `mailbox`, a mailbox user of that tenant and a DKIM key for acme.test. Returns the config
 * file's path. BENCH_OUTPOST_QUEUE (JSON) sets queue.* keys, to compare settings in one command
 * (e.g. '{"burstDeferSeconds":0}').
 */
export async function seedBenchRelay(dataDir: string, mailbox?: { identity: string; password: string }): Promise<string> {
  const configFile = join(dataDir, 'outpost.config.json');
  const queue = process.env.BENCH_OUTPOST_QUEUE ? (JSON.parse(process.env.BENCH_OUTPOST_QUEUE) as Record<string, unknown>) : {};
  await writeFile(configFile, JSON.stringify({ defaults: { mailsPerMinute: 10_000_000, mailsPerHour: 100_000_000, maxRecipientsPerDay: 10_000_000 }, queue }));
  const stores = openLocalStores(parseConfig({ dataDir }));
  try {
    const tenant = await stores.configStore.createTenant('bench');
    await stores.configStore.addDomain(tenant.id, 'acme.test');
    await stores.configStore.createUser({ tenantId: tenant.id, ...parseIdentity('127.0.0.1'), passwordHash: null });
    if (mailbox) {
      await stores.configStore.createUser({ tenantId: tenant.id, ...parseIdentity(mailbox.identity), passwordHash: await hashPassword(mailbox.password) });
      await addDkimKey(stores.dkimKeys, { domain: 'acme.test', now: Date.now() });
    }
  } finally {
    stores.close();
  }
  return configFile;
}

export const SMTP_SOURCE = '/usr/sbin/smtp-source';
export const SMTP_SINK = '/usr/sbin/smtp-sink';

/** postfix's smtp-sink on a free loopback port, storing nothing; backlog 256 so that a burst of new connections is not refused. */
export async function startSmtpSink(name: string): Promise<{ name: string; port: number; pid?: number; stop(): Promise<void> }> {
  const port = await freePort();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const child = spawn(SMTP_SINK, [...(asRoot ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '256'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  await waitForGreeting(name, port, { gone: () => (child.exitCode === null ? undefined : `smtp-sink exited: ${output()}`) });
  return { name, port, pid: child.pid, stop: () => stopChild(child) };
}

export interface SmtpSourceBurst {
  sessions: number;
  messages: number;
  /** Bytes a message (2048 unless given). */
  size?: number;
  /** Sessions kept for every message (-d), or a new connection per message. */
  reuse: boolean;
}

/**
 * One burst of postfix's smtp-source against 127.0.0.1:`port`, from bulk@acme.test (the bench
 * relay's tenant, sent as its IP user) to rcpt@example.org; resolves with its wall time in seconds.
 * Any refusal makes smtp-source exit non-zero, and this reject with its last output.
 */
export async function runSmtpSource(port: number, burst: SmtpSourceBurst): Promise<number> {
  const args = ['-s', String(burst.sessions), '-l', String(burst.size ?? 2048), '-m', String(burst.messages), '-M', 'client.bench.test', '-f', 'bulk@acme.test', '-t', 'rcpt@example.org', ...(burst.reuse ? ['-d'] : []), `127.0.0.1:${port}`];
  const started = performance.now();
  const child = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  const code = await exited(child);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`smtp-source against port ${port} exited ${code}: ${output().slice(-1000)}`);
  return seconds;
}

/** `outpost start` on a fresh data folder, delivering to 127.0.0.1:`smarthostPort`. */
export async function startOutpostChild(options: OutpostChildOptions): Promise<OutpostChild> {
  const { smarthostPort, dnsAddress } = options;
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bench-ingress-'));
  const ports = { ...(await relayPorts()), dns: dnsAddress };
  const configFile = await seedBenchRelay(dataDir, options.mailbox);
  const env = relayEnv(dataDir, ports, { OUTPOST_CONFIG: configFile, OUTPOST_RELAY_HOST: `127.0.0.1:${smarthostPort}`, OUTPOST_LOG_LEVEL: 'error' });
  const nodeFlags = options.nodeFlags ?? (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, join(ROOT, 'bin', 'outpost.js'), 'start'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  const deadline = Date.now() + 60_000;
  while (!output().includes('Outpost single node is running')) {
    if (child.exitCode !== null) throw new Error(`outpost start exited ${child.exitCode}: ${output()}`);
    if (Date.now() > deadline) throw new Error(`outpost start did not come up: ${output()}`);
    await sleep(50);
  }
  const db = new Database(join(dataDir, 'outpost.db'), { readonly: true });
  const backlog = () => (db.prepare('SELECT COUNT(*) AS n FROM queue_messages').get() as { n: number }).n;
  return {
    port: ports.submission,
    dataDir,
    pid: child.pid,
    output,
    async settle() {
      const until = Date.now() + 300_000;
      while (backlog() > 0 && Date.now() < until) await sleep(500);
    },
    async stop() {
      db.close();
      await stopChild(child);
      if (child.exitCode !== 0) process.stderr.write(`outpost exited ${child.exitCode}: ${output().slice(-2000)}\n`);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A bench script (run with tsx) in a child process of its own, which prints `PORT <n>` once it listens. */
export async function startScriptChild(name: string, script: string, args: string[] = []): Promise<{ name: string; port: number; pid: number | undefined; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collect(child);
  const deadline = Date.now() + 30_000;
  let port = 0;
  while (port === 0) {
    port = Number(/PORT (\d+)/.exec(output())?.[1] ?? 0);
    if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${output()}`);
    if (Date.now() > deadline) throw new Error(`${name} did not listen: ${output()}`);
    if (port === 0) await sleep(50);
  }
  return { name, port, pid: child.pid, stop: () => stopChild(child) };
}

/** CPU a burst cost a server, per message: its whole process and its main thread, in ms. */
export interface BurstCpu {
  totalMs: number;
  mainMs: number;
  /** The main thread's time in user space and in the kernel (its socket reads and writes, mostly), when /proc tells. */
  mainUserMs?: number;
  mainSystemMs?: number;
}

/** The scheduler's account of the main thread of `pid` so far (/proc/PID/task/PID/schedstat and status). */
export interface MainThreadSchedule {
  /** Nanoseconds on a CPU. */
  runNs: number;
  /** Nanoseconds runnable but waiting for a CPU (preempted, or woken while every CPU was busy). */
  waitNs: number;
  /** Times it was switched out while it still had work (preempted). */
  involuntary: number;
}

/** The main thread's schedule so far; undefined where /proc cannot tell (no schedstats). */
export function mainThreadSchedule(pid: number): MainThreadSchedule | undefined {
  try {
    const [runNs, waitNs] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    const involuntary = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))?.[1]);
    if (!Number.isFinite(runNs) || !Number.isFinite(waitNs) || !Number.isFinite(involuntary)) return undefined;
    return { runNs: runNs as number, waitNs: waitNs as number, involuntary };
  } catch {
    return undefined;
  }
}

/** The main thread's shares of a burst's wall time on a CPU and waiting for one, and how often it was preempted per message. */
export interface BurstSchedule {
  runningShare: number;
  waitingShare: number;
  preemptionsPerMessage: number;
}

export function burstSchedule(before: MainThreadSchedule | undefined, after: MainThreadSchedule | undefined, wallSeconds: number, messages: number): BurstSchedule | undefined {
  if (!before || !after || !(wallSeconds > 0)) return undefined;
  const wallNs = wallSeconds * 1e9;
  return { runningShare: (after.runNs - before.runNs) / wallNs, waitingShare: (after.waitNs - before.waitNs) / wallNs, preemptionsPerMessage: (after.involuntary - before.involuntary) / messages };
}

/** The whole machine's CPU time so far, in clock ticks of all CPUs: busy (not idle, not waiting for I/O) and in all (/proc/stat). */
export function machineTimes(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal (guest time is counted in user already).
    const ticks = fields.slice(0, 8);
    if (ticks.length < 5 || ticks.some((value) => !Number.isFinite(value))) return undefined;
    const total = ticks.reduce((sum, value) => sum + value, 0);
    return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/**
 * The share of the machine's CPUs busy during a burst (every process, the load generator and the
 * kernel's network work included): with one share near 1, the burst was limited by the machine;
 * well below, by one thread.
 */
export function machineBusyShare(before: ReturnType<typeof machineTimes>, after: ReturnType<typeof machineTimes>): number | undefined {
  if (!before || !after || after.total <= before.total) return undefined;
  return (after.busy - before.busy) / (after.total - before.total);
}

/** CPU seconds the main thread of `pid` has used so far, in user space and in the kernel; undefined where /proc cannot tell. */
export function mainThreadTimes(pid: number): { user: number; system: number } | undefined {
  try {
    const times = taskTimes(pid, pid);
    return Number.isFinite(times.user) && Number.isFinite(times.system) ? times : undefined;
  } catch {
    return undefined;
  }
}

/** From threadCpuSeconds before and after a burst of `messages`; undefined where /proc cannot tell. */
export function cpuPerMessage(
  pid: number,
  before: Map<number, number>,
  after: Map<number, number>,
  messages: number,
  main?: { before?: { user: number; system: number }; after?: { user: number; system: number } },
): BurstCpu | undefined {
  if (before.size === 0 || after.size === 0) return undefined;
  let total = 0;
  for (const [tid, seconds] of after) total += seconds - (before.get(tid) ?? 0);
  const mainSeconds = (after.get(pid) ?? 0) - (before.get(pid) ?? 0);
  const split = main?.before && main.after ? { mainUserMs: ((main.after.user - main.before.user) * 1000) / messages, mainSystemMs: ((main.after.system - main.before.system) * 1000) / messages } : {};
  return { totalMs: (total * 1000) / messages, mainMs: (mainSeconds * 1000) / messages, ...split };
}
