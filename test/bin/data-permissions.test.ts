// The single node's data folder holds mail, credentials and keys: after a start (even over an
// installation made with looser modes) and a message accepted over SMTP, every folder in it is
// 0700 and every file 0600, checked by stat.
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendWithNodemailer, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

let parent: string;
let dataDir: string;
let e2e: E2eNode;

beforeAll(async () => {
  parent = await mkdtemp(join(tmpdir(), 'outpost-perms-'));
  dataDir = join(parent, 'data');
  // An installation from before: world-readable folder and database.
  await mkdir(dataDir, { mode: 0o755 });
  await chmod(dataDir, 0o755);
  await writeFile(join(dataDir, 'outpost.db'), '', { mode: 0o644 });
  await chmod(join(dataDir, 'outpost.db'), 0o644);
  // Port 9 on loopback refuses: delivery is deferred, so the message file stays on disk. Every
  // message goes to a file here (a small one would be in the database, whose mode is checked too).
  e2e = await startE2eNode({ relayHost: '127.0.0.1:9', config: { dataDir, delivery: { retrySchedule: [3600] }, queue: { inlineBodyBytes: 0 } } });
  const acme = await e2e.tenant('acme', ['acme.test']);
  await e2e.user(acme, 'alice@acme.test');
  await sendWithNodemailer(e2e.node.ports.submission, 'alice@acme.test', { from: 'alice@acme.test', to: 'bob@example.org', subject: 'private' });
});

afterAll(async () => {
  await e2e?.stop();
  await rm(parent, { recursive: true, force: true });
});

const modeOf = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);

async function walk(dir: string): Promise<Array<{ path: string; dir: boolean }>> {
  const found: Array<{ path: string; dir: boolean }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    found.push({ path, dir: entry.isDirectory() });
    if (entry.isDirectory()) found.push(...(await walk(path)));
  }
  return found;
}

describe('data folder permissions', () => {
  it('keeps the data folder 0700 and the database, WAL, secrets, TLS key and operator token 0600', async () => {
    expect(await modeOf(dataDir)).toBe('700');
    for (const file of ['outpost.db', 'outpost.db-wal', 'outpost.db-shm', 'secret-box.key', 'operator-token', 'tls/key.pem']) {
      expect(await modeOf(join(dataDir, file)), file).toBe('600');
    }
    expect(await modeOf(join(dataDir, 'tls'))).toBe('700');
  });

  it('writes message files 0600 in 0700 folders', async () => {
    const entries = await walk(join(dataDir, 'blobs'));
    const messages = entries.filter((entry) => entry.path.endsWith('.eml'));
    expect(messages.length, 'the accepted message is on disk').toBeGreaterThan(0);
    expect(await modeOf(join(dataDir, 'blobs'))).toBe('700');
    for (const entry of entries) expect(await modeOf(entry.path), entry.path).toBe(entry.dir ? '700' : '600');
  });

  it('has nothing in the data folder that group or others may read', async () => {
    for (const entry of await walk(dataDir)) {
      if (entry.path.endsWith('cert.pem')) continue; // the certificate is public by nature
      expect(await modeOf(entry.path), entry.path).toBe(entry.dir ? '700' : '600');
    }
  });
});
