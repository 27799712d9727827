// Housekeeping removes bounce files left behind (older than bounces.orphanHours, referred to by
// no queued bounce job) and keeps every file a job still needs, and every young one.
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLocalStores } from '../../bin/local-stores.js';
import { runHousekeeping } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import type { Envelope } from '../../core/ports.js';

const HOUR = 3_600_000;

const bounceJob = (blobKey: string): string => {
  const envelope: Envelope = { messageId: blobKey.replace(/\W/g, ''), tenantId: 't1', userId: '', identity: 'bounce', mailFrom: '', rcptTo: ['prvs=1234abcdef=ann@acme.test'], blobKey, size: 5, receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'mx.example.org' };
  return JSON.stringify(envelope);
};

describe('runHousekeeping and bounce files', () => {
  it('removes an old orphan bounce file and keeps the ones a queued job refers to, and young ones', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bounce-housekeeping-'));
    const config = parseConfig({ dataDir, bounces: { orphanHours: 24 } });
    const stores = openLocalStores(config, { now: () => Date.now() });
    try {
      const files = {
        orphan: 'bounces/2026-11-01/ORPHAN.eml',
        queued: 'bounces/2026-11-01/QUEUED.eml',
        deadLettered: 'bounces/2026-11-01/DLQ.eml',
        young: 'bounces/2026-12-01/YOUNG.eml',
        notABounce: 'messages/2026-11-01/MSG.eml',
      };
      for (const key of Object.values(files)) await stores.blobs.put(key, Buffer.from('bytes'));
      const twoDaysAgo = new Date(Date.now() - 48 * HOUR);
      for (const key of [files.orphan, files.queued, files.deadLettered, files.notABounce]) {
        await utimes(join(dataDir, 'blobs', key), twoDaysAgo, twoDaysAgo);
      }
      await stores.queue.send('bounce', bounceJob(files.queued));
      await stores.queue.send('bounce-dlq', bounceJob(files.deadLettered));

      await runHousekeeping(stores, config, { now: () => Date.now() });

      expect(await stores.blobs.exists(files.orphan)).toBe(false);
      expect(await stores.blobs.exists(files.queued)).toBe(true);
      expect(await stores.blobs.exists(files.deadLettered)).toBe(true);
      expect(await stores.blobs.exists(files.young)).toBe(true);
      expect(await stores.blobs.exists(files.notABounce)).toBe(true);
    } finally {
      stores.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
