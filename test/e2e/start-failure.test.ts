// `outpost start` with a port already taken reports it and exits 1, whichever listener failed:
// what the start had opened before (listeners, worker threads, the database) is given back, so
// the process does not linger holding the other ports with nobody to stop it.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { relayEnv, relayPorts, type RelayPorts } from '../helpers/relay-process.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'outpost.js');
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function occupy(port: number): Promise<void> {
  const squatter: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    squatter.once('error', reject);
    squatter.listen(port, '127.0.0.1', () => resolve());
  });
  cleanups.push(() => new Promise((resolve) => squatter.close(resolve)));
}

/** Runs `outpost start`; resolves with its exit code and output, or 'still running' after `ms`. */
async function start(ports: RelayPorts, ms: number): Promise<{ code: number | 'still running'; output: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-start-failure-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, 'start'], { env: relayEnv(dataDir, ports), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | 'still running'>((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    child.once('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode ?? -1);
    });
  });
  if (code === 'still running') child.kill('SIGKILL');
  return { code, output };
}

describe('outpost start with a port in use', () => {
  for (const listener of ['submission', 'bounce', 'http'] as const) {
    it(`exits 1 and names the port when the ${listener} port is taken`, async () => {
      const ports = await relayPorts();
      await occupy(ports[listener]);
      const { code, output } = await start(ports, 30_000);
      expect(code).toBe(1);
      expect(output).toContain(`EADDRINUSE`);
      expect(output).toContain(String(ports[listener]));
      // Logged as what it is, not as a client's connection error.
      if (listener !== 'http') expect(output).toContain('listener cannot open its port');
      expect(output).not.toContain('client connection error');
    }, 40_000);
  }
});
