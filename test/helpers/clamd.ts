// Starts a private clamd for a test file: its own clamd.conf, a signature database made here
// (EICAR as .ndb and as an MD5 .hdb via sigtool), TCP on a free loopback port, small limits so
// that "over the limits" archives are cheap to build. Fails (never skips) when clamd is missing.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpExchange, waitFor } from './net.js';

export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

export interface TestDaemon {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** Spawns a daemon and keeps the tail of its output for error messages. */
export function spawnDaemon(command: string, args: string[], cwd: string): { child: ChildProcess; exited: () => string | undefined; stop: () => Promise<void> } {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exit: string | undefined;
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (error) => (exit = `${command}: ${error.message}`));
  child.on('exit', (code, signal) => (exit = `${command} exit ${code ?? signal}: ${output}`));
  const stop = async (): Promise<void> => {
    if (exit !== undefined || child.pid === undefined) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
  };
  return { child, exited: () => exit, stop };
}

async function clamdPing(port: number): Promise<boolean> {
  return (await tcpExchange(port, 'zPING\0')).startsWith('PONG');
}

export interface ClamdLimits {
  maxFileSize: string;
  maxScanSize: string;
  maxRecursion: number;
}

export async function startClamd(limits: ClamdLimits = { maxFileSize: '1M', maxScanSize: '1M', maxRecursion: 5 }): Promise<TestDaemon & { eicarMd5Sig: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-clamd-'));
  const db = join(dir, 'db');
  execFileSync('mkdir', ['-p', db]);
  writeFileSync(join(db, 'outpost-test.ndb'), `Outpost.Test.EICAR-NDB:0:*:${Buffer.from(EICAR).toString('hex')}\n`);
  // The same file as an MD5 signature made by sigtool, as an operator would make one.
  writeFileSync(join(dir, 'eicar.com'), EICAR);
  const md5Sig = execFileSync('sigtool', ['--md5', join(dir, 'eicar.com')]).toString().trim().replace(/:[^:]*$/, ':Outpost.Test.EICAR-HDB');
  writeFileSync(join(db, 'outpost-test.hdb'), `${md5Sig}\n`);
  const port = await freePort();
  writeFileSync(
    join(dir, 'clamd.conf'),
    [
      'Foreground yes',
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      `DatabaseDirectory ${db}`,
      `PidFile ${join(dir, 'clamd.pid')}`,
      'ScanArchive yes',
      'ScanMail yes',
      'AlertExceedsMax yes',
      // MaxScanSize <= MaxFileSize, or an oversized member passes as clean.
      `MaxFileSize ${limits.maxFileSize}`,
      `MaxScanSize ${limits.maxScanSize}`,
      `MaxRecursion ${limits.maxRecursion}`,
      'MaxFiles 100',
      'StreamMaxLength 20M',
      'LogVerbose no',
      '',
    ].join('\n'),
  );
  const daemon = spawnDaemon('clamd', ['-c', join(dir, 'clamd.conf')], dir);
  await waitFor('clamd to answer PING', () => clamdPing(port), { timeoutMs: 30_000, intervalMs: 200, gone: daemon.exited });
  return {
    port,
    dir,
    eicarMd5Sig: md5Sig,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
