// The ingress container's entry as ECS runs it: a health endpoint for the NLB that answers 503
// while the task cannot serve (here: no stores configured, OUTPOST_TABLE_PREFIX unset, so the
// ingress cannot start and the NLB must send it nothing), and a clean exit on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let child: ChildProcess;
let port = 0;
let dataDir: string;
const lines: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'outpost-ingress-task-'));
  child = spawn(process.execPath, ['--import', 'tsx', 'smtp-ec2/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, OUTPOST_HTTP_PORT: '0', OUTPOST_LISTEN_ADDRESS: '127.0.0.1', OUTPOST_DATA_DIR: dataDir, OUTPOST_TLS_KEY_PEM: 'key', OUTPOST_TLS_CERT_PEM: 'cert', OUTPOST_CLOSE_TIMEOUT_SECONDS: '5' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.on('error', () => undefined);
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no health endpoint; output: ${lines.join('\n')}`)), 30_000);
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        const parsed = JSON.parse(line) as { message?: string; port?: number };
        if (parsed.message === 'health endpoint listening' && parsed.port) {
          clearTimeout(timer);
          resolve(parsed.port);
        }
      }
    });
  });
}, 60_000);

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function waitFor(predicate: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out; output: ${lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('ingress task entry', () => {
  it('answers the health check with 503 and a problem body when the ingress could not start', async () => {
    await waitFor(() => lines.some((line) => line.includes('ingress could not start')));
    const response = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 503, detail: 'ingress is failed' });
    expect(lines.find((line) => line.includes('ingress could not start'))).toMatch(/OUTPOST_TABLE_PREFIX is not set/);
    const other = await fetch(`http://127.0.0.1:${port}/anything`);
    expect(other.status).toBe(404);
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.some((line) => line.includes('"message":"draining'))).toBe(true);
  });
});
