// `npx outpost backup DIR` while the relay runs and holds queued mail (its smarthost is down);
// the backup, copied into a fresh data folder, starts as a node that delivers that queue, signed
// with the same DKIM key (so the secret key file came along) and with the same operator token.
import { cp, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addDkimKey } from '../../core/dkim/keys.js';
import { headersOf, messageWithStatus, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { freePort } from '../helpers/net.js';
import { outpost } from '../helpers/relay-process.js';

const nodes: E2eNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

describe('outpost backup', () => {
  it('copies a running node consistently; the restored copy delivers the queue', async () => {
    // Nothing listens on the smarthost port: every delivery is deferred for an hour.
    const first = await startE2eNode({ relayHost: `127.0.0.1:${await freePort()}`, config: { delivery: { retrySchedule: [3600] } } });
    nodes.push(first);
    const tenant = await first.tenant('acme', ['acme.test']);
    await first.user(tenant, 'alice@acme.test');
    const dkim = await addDkimKey(first.node.stores.dkimKeys, { domain: 'acme.test', selector: 'bk1', now: Date.now() });
    const port = first.node.ports.submission;
    const queued: string[] = [];
    for (let i = 0; i < 4; i += 1) queued.push(await submit(port, { from: 'alice@acme.test', to: 'bob@example.org', subject: `before backup ${i}` }));
    for (const id of queued) await messageWithStatus(first.node, id, 'deferred');

    // Mail keeps arriving while the backup runs.
    const during = Promise.all([0, 1, 2].map((i) => submit(port, { from: 'alice@acme.test', to: 'bob@example.org', subject: `during backup ${i}` })));
    const backupDir = join(await mkdtemp(join(tmpdir(), 'outpost-backup-')), 'copy');
    const output = await outpost({ ...process.env, OUTPOST_DATA_DIR: first.dataDir, OUTPOST_LOG_LEVEL: 'error' }, ['backup', backupDir]);
    expect(output).toContain(`backup written to ${backupDir}`);
    await during;
    expect((await stat(backupDir)).mode & 0o777).toBe(0o700);
    expect(output).toMatch(/database\s+schema version \d+, \d+ messages in the pipeline queues/);
    // Every queued message is in the copy: small ones in the database, none reported missing.
    expect(output).not.toContain('finished while the backup ran');
    for (const file of ['secret-box.key', 'operator-token', 'tls/key.pem', 'tls/cert.pem']) {
      expect((await readFile(join(backupDir, file))).equals(await readFile(join(first.dataDir, file))), file).toBe(true);
    }

    // A second backup never overwrites the first.
    await expect(outpost({ ...process.env, OUTPOST_DATA_DIR: first.dataDir, OUTPOST_LOG_LEVEL: 'error' }, ['backup', backupDir])).rejects.toThrow(/is not empty/);

    // Restore: copy the backup into a fresh data folder and start there, smarthost up.
    const restoredDir = join(await mkdtemp(join(tmpdir(), 'outpost-restored-')), 'data');
    await cp(backupDir, restoredDir, { recursive: true });
    await first.stop();
    nodes.splice(0);
    const second = await startE2eNode({ config: { dataDir: restoredDir } });
    nodes.push(second);
    expect(second.node.operatorToken.token).toBe(first.node.operatorToken.token);
    // The deferred messages wait for their next attempt: move the clock past it.
    second.clock.advance(2 * 3600_000);
    const received = await second.sink.waitForMessages(queued.length, 30_000);
    const ids = received.map((message) => headersOf(message.data).get('x-outpost-queue-id')?.[0]);
    expect(ids).toEqual(expect.arrayContaining(queued));
    for (const message of received) expect(headersOf(message.data).get('dkim-signature')?.[0]).toContain(`s=${dkim.selector};`);
    for (const id of queued) await messageWithStatus(second.node, id, 'delivered');
  }, 90_000);
});
