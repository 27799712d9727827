// Starts SpamAssassin's spamd for a test file, offline with the rules Debian ships:
// `spamd -L -x -u nobody -i 127.0.0.1 -p PORT --cf='use_bayes 0'`. Fails when spamd is missing.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnDaemon, waitFor, type TestDaemon } from './clamd.js';

function spamdPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.on('connect', () => socket.end('PING SPAMC/1.5\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString()));
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(reply.includes('PONG')));
  });
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
  await waitFor('spamd', 60_000, () => spamdPing(port), daemon.exited);
  return {
    port,
    dir,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
