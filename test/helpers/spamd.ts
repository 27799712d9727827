// Starts SpamAssassin's spamd for a test file, offline with the rules Debian ships:
// `spamd -L -x -u nobody -i 127.0.0.1 -p PORT --cf='use_bayes 0'`. Fails when spamd is missing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnDaemon, type TestDaemon } from './clamd.js';
import { freePort, tcpExchange, waitFor } from './net.js';

async function spamdPing(port: number): Promise<boolean> {
  return (await tcpExchange(port, 'PING SPAMC/1.5\r\n\r\n', { halfClose: true })).includes('PONG');
}

export async function startSpamd(): Promise<TestDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-spamd-'));
  const port = await freePort();
  const pidFile = join(dir, 'spamd.pid');
  const daemon = spawnDaemon(
    'spamd',
    ['-L', '-x', '-u', 'nobody', '-i', '127.0.0.1', '-p', String(port), '--cf=use_bayes 0', '-s', 'stderr', '-r', pidFile, '--max-children=2'],
    dir,
  );
  await waitFor('spamd to answer PING', () => spamdPing(port), { timeoutMs: 60_000, intervalMs: 200, gone: daemon.exited });
  return {
    port,
    dir,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
