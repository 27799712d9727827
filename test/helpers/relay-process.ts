// Runs the real `outpost` command (bin/outpost.js) as a child process, as an operator would.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';

const runFile = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'outpost.js');

export interface RelayPorts {
  submission: number;
  submissions: number;
  bounce: number;
  http: number;
  /** host:port of the test DNS server, when the test runs one (OUTPOST_DNS_SERVERS). */
  dns?: string;
}

export async function relayPorts(): Promise<RelayPorts> {
  return { submission: await freePort(), submissions: await freePort(), bounce: await freePort(), http: await freePort() };
}

export function relayEnv(dataDir: string, ports: RelayPorts, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    OUTPOST_DATA_DIR: dataDir,
    OUTPOST_LISTEN_ADDRESS: '127.0.0.1',
    OUTPOST_HOSTNAME: 'relay.test',
    OUTPOST_SMTP_PORT: String(ports.submission),
    OUTPOST_SMTPS_PORT: String(ports.submissions),
    OUTPOST_BOUNCE_PORT: String(ports.bounce),
    OUTPOST_HTTP_PORT: String(ports.http),
    OUTPOST_LOG_LEVEL: 'warn',
    ...(ports.dns ? { OUTPOST_DNS_SERVERS: ports.dns } : {}),
    ...extra,
  };
}

/** `npx outpost ARGS` against the same data folder; resolves with stdout. */
export async function outpost(env: NodeJS.ProcessEnv, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await runFile(process.execPath, [BIN, ...args], { env, cwd: ROOT });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`outpost ${args.join(' ')} exited ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

export interface RelayProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `outpost start` and resolves once it says it is running. */
export async function startRelay(env: NodeJS.ProcessEnv): Promise<RelayProcess> {
  const child = spawn(process.execPath, [BIN, 'start'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!output.includes('Outpost single node is running')) {
    if (child.exitCode !== null) throw new Error(`outpost start exited ${child.exitCode}: ${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`outpost start did not come up: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, output: () => output, exited };
}
