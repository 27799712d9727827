// The single node's housekeeping removes what has outlived its retention, and keeps the rest.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLocalStores } from '../../bin/local-stores.js';
import { runHousekeeping } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import { suppressHardBounce } from '../../core/suppression.js';

const DAY = 86_400_000;

describe('runHousekeeping', () => {
  it('purges old messages, refusal statistics, expired suppressions and stale bulk sightings', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'outpost-housekeeping-'));
    let now = Date.UTC(2026, 10, 1);
    const clock = { now: () => now };
    const config = parseConfig({ dataDir, messageLog: { retentionDays: 30 }, scanning: { bulkWindowMinutes: 60 } });
    const stores = openLocalStores(config, clock);
    try {
      const record = (id: string, at: number) =>
        stores.log.create({ id, tenantId: 't1', userId: 'u1', identity: 'a@acme.test', mailFrom: 'a@acme.test', rcptTo: ['b@example.org'], size: 1, subject: null, status: 'delivered', receivedAt: at });
      await record('OLD', now);
      await stores.stats.recordRefusal({ tenantId: 't1', userId: 'u1', reason: 'RATE_LIMIT_HOUR', at: now });
      await suppressHardBounce(stores.suppression, { tenantId: 't1', address: 'gone@example.org', reason: '550 5.1.1', now });
      await stores.fingerprints.recordSighting('0123456789abcdef', 'a@acme.test', now);

      now += 40 * DAY;
      await record('NEW', now);
      expect(await stores.fingerprints.countSenders('0123456789abcdef', 0, 0)).toBe(1);
      expect(stores.db.prepare('SELECT COUNT(*) AS n FROM suppressions').get()).toEqual({ n: 1 });
      await runHousekeeping(stores, config, clock);

      expect(await stores.log.get('OLD')).toBeUndefined();
      expect(await stores.log.get('NEW')).toBeDefined();
      const points = await stores.stats.volume({ tenantId: 't1', from: now - 45 * DAY, to: now + 1, bucket: 'day' });
      expect(points.some((point) => Object.keys(point.refused).length > 0)).toBe(false);
      expect(stores.db.prepare('SELECT COUNT(*) AS n FROM suppressions').get()).toEqual({ n: 0 });
      expect(await stores.fingerprints.countSenders('0123456789abcdef', 0, 0)).toBe(0);
    } finally {
      stores.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
