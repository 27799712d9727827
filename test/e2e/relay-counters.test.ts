// The rate limits at RCPT live in the relay's memory (adapters/local/relay-counters.ts): they are
// written to the database once a second and read back at start, so a relay that stops or dies
// finds its senders' windows where they were; and one relay holds a data folder, so that no
// second relay counts beside it (a sender would get through twice its limits).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataFolderInUse, LOCK_FILE, lockDataFolder } from '../../adapters/local/data-folder-lock.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { rawMessage, rawSession, rawTransaction, testZone } from '../helpers/e2e-node.js';
import { outpost, relayEnv, relayPorts, startRelay, type RelayProcess } from '../helpers/relay-process.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';

const PASSWORD = 'a good long password';
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function killed(relay: RelayProcess): Promise<void> {
  if (relay.child.exitCode === null) relay.child.kill('SIGKILL');
  await relay.exited;
}

/** One message from alice; resolves with the reply to RCPT, and to the end of DATA when RCPT was accepted. */
async function send(port: number, subject: string): Promise<{ rcpt: string; end?: string }> {
  const { smtp, auth } = await rawSession(port, 'alice@acme.test', PASSWORD);
  if (!auth?.startsWith('235')) throw new Error(`AUTH refused: ${auth}`);
  try {
    const reply = await rawTransaction(smtp, { mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('alice@acme.test', 'bob@example.org', subject) });
    return { rcpt: reply.rcpt[0] ?? '', ...(reply.end ? { end: reply.end } : {}) };
  } finally {
    smtp.close();
  }
}

async function relayFolder(): Promise<{ env: NodeJS.ProcessEnv; dataDir: string; otherEnv: () => Promise<NodeJS.ProcessEnv> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-relay-counters-'));
  const sink = await startSmtpSink();
  const dns = await startDnsServer(testZone());
  cleanups.push(async () => {
    await sink.stop();
    await dns.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  const extra = { OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}` };
  const env = relayEnv(dataDir, { ...(await relayPorts()), dns: dns.address }, extra);
  await outpost(env, ['tenant', 'add', 'acme']);
  await outpost(env, ['domain', 'add', '--tenant', 'acme', 'acme.test']);
  await outpost(env, ['user', 'add', '--tenant', 'acme', 'alice@acme.test', '--password-stdin'], PASSWORD + '\n');
  await outpost(env, ['user', 'set', '--tenant', 'acme', 'alice@acme.test', 'mailsPerHour=2']);
  // The same folder, other ports: a second relay as an operator might start it by mistake.
  return { env, dataDir, otherEnv: async () => relayEnv(dataDir, { ...(await relayPorts()), dns: dns.address }, extra) };
}

describe('the relay keeps its rate limits across a restart', () => {
  it('a relay killed (SIGKILL) once a write has passed after the last message comes back with the sender\'s hour as it was: the third mail is refused', async () => {
    const { env, otherEnv } = await relayFolder();
    const first = await startRelay(env);
    cleanups.push(() => killed(first));
    for (const subject of ['one', 'two']) expect((await send(Number(env.OUTPOST_SMTP_PORT), subject)).end).toMatch(/^250 2\.0\.0 /);
    // The counters are written once a second: two and a half give a loaded machine room for one write.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await killed(first);

    const again = await otherEnv();
    const second = await startRelay(again);
    cleanups.push(() => killed(second));
    const refused = await send(Number(again.OUTPOST_SMTP_PORT), 'three');
    expect(refused.rcpt).toMatch(/^451 4\.7\.1 Hourly limit of 2 mails reached; retry after /);
    expect(refused.end).toBeUndefined();
  }, 90_000);

  it('a relay stopped with SIGTERM right after the last message comes back with the sender\'s hour as it was', async () => {
    const { env } = await relayFolder();
    const first = await startRelay(env);
    cleanups.push(() => killed(first));
    for (const subject of ['one', 'two']) expect((await send(Number(env.OUTPOST_SMTP_PORT), subject)).end).toMatch(/^250 2\.0\.0 /);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await startRelay(env);
    cleanups.push(() => killed(second));
    expect((await send(Number(env.OUTPOST_SMTP_PORT), 'three')).rcpt).toMatch(/^451 4\.7\.1 Hourly limit of 2 mails/);
  }, 90_000);
});

describe('one relay per data folder', () => {
  it('a second `outpost start` on the folder of a running relay exits 1 and names it; once that relay is gone (SIGKILL), a start takes the folder over', async () => {
    const { env, otherEnv } = await relayFolder();
    const first = await startRelay(env);
    cleanups.push(() => killed(first));

    const other = await otherEnv();
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'outpost.js'), 'start'], { env: other, stdio: ['ignore', 'pipe', 'pipe'] });
    // Killed after the test whatever happens (a start that wrongly succeeds would keep running).
    cleanups.push(() => child.exitCode === null && child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(output).toContain(`another Outpost relay (process ${first.child.pid}) runs on this data folder`);
    // The running relay still serves.
    expect((await send(Number(env.OUTPOST_SMTP_PORT), 'still here')).end).toMatch(/^250 2\.0\.0 /);

    await killed(first);
    const second = await startRelay(other);
    cleanups.push(() => killed(second));
    expect((await send(Number(other.OUTPOST_SMTP_PORT), 'taken over')).end).toMatch(/^250 2\.0\.0 /);
  }, 90_000);

  it('lockDataFolder: refused while the process named in relay.pid lives, taken over once it is gone, given back on release', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'outpost-lock-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const path = join(dataDir, LOCK_FILE);
    const sleeper = spawn('sleep', ['30']);
    cleanups.push(() => sleeper.kill('SIGKILL'));
    writeFileSync(path, String(sleeper.pid));
    expect(() => lockDataFolder(dataDir)).toThrow(new DataFolderInUse(sleeper.pid ?? 0, path));

    sleeper.kill('SIGKILL');
    await new Promise((resolve) => sleeper.once('exit', resolve));
    const lock = lockDataFolder(dataDir);
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    lock.release();
    expect(existsSync(path)).toBe(false);

    // A file left empty or unreadable as a process id is nobody's: taken over.
    for (const left of ['', 'not a pid']) {
      writeFileSync(path, left);
      lockDataFolder(dataDir).release();
      expect(existsSync(path)).toBe(false);
    }

    // A release gives back only this process's own hold.
    const again = lockDataFolder(dataDir);
    writeFileSync(path, '1');
    again.release();
    expect(readFileSync(path, 'utf8')).toBe('1');
  });
});
