// The single node's housekeeping removes what has outlived its retention, and keeps the rest.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openLocalStores } from '../../bin/local-stores.js';
import { runHousekeeping } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import { suppressHardBounce } from '../../core/suppression.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

describe('runHousekeeping', () => {
  it('purges old messages, refusal statistics, expired suppressions, stale bulk sightings, counters and login sources, and keeps the live ones', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'outpost-housekeeping-'));
    let now = Date.UTC(2026, 10, 1);
    const clock = { now: () => now };
    const config = parseConfig({ dataDir, messageLog: { retentionDays: 30 }, scanning: { bulkWindowMinutes: 60 } });
    const stores = openLocalStores(config, clock);
    // A second connection reads the tables: the rows must be gone, not merely hidden by the stores' reads.
    const db = new Database(join(dataDir, 'outpost.db'), { readonly: true });
    try {
      const record = (id: string, at: number) =>
        stores.log.create({ id, tenantId: 't1', userId: 'u1', identity: 'a@acme.test', mailFrom: 'a@acme.test', rcptTo: ['b@example.org'], size: 1, subject: null, status: 'delivered', receivedAt: at });
      await record('OLD', now);
      await stores.stats.recordRefusal({ tenantId: 't1', userId: 'u1', reason: 'RATE_LIMIT_HOUR', at: now });
      await suppressHardBounce(stores.suppression, { tenantId: 't1', address: 'gone@example.org', reason: '550 5.1.1', now });
      await stores.fingerprints.recordSighting('0123456789abcdef', 'a@acme.test', now);
      await stores.counters.add('rate:hour:user:u1', 1, HOUR);
      await stores.loginSources.remember('a@acme.test', '192.0.2.1', now, 30 * DAY);

      now += 40 * DAY;
      await record('NEW', now);
      // Live entries of every kind, which housekeeping must keep.
      await stores.stats.recordRefusal({ tenantId: 't1', userId: 'u1', reason: 'RATE_LIMIT_MINUTE', at: now });
      await suppressHardBounce(stores.suppression, { tenantId: 't1', address: 'fresh@example.org', reason: '550 5.1.1', now });
      await stores.fingerprints.recordSighting('fedcba9876543210', 'a@acme.test', now);
      await stores.counters.add('rate:hour:user:u2', 1, HOUR);
      await stores.loginSources.remember('a@acme.test', '192.0.2.2', now, 30 * DAY);
      expect(await stores.fingerprints.countSenders('0123456789abcdef', 0, 0)).toBe(1);
      expect(db.prepare('SELECT COUNT(*) AS n FROM suppressions').get()).toEqual({ n: 2 });
      await runHousekeeping(stores, config, clock);

      expect(await stores.log.get('OLD')).toBeUndefined();
      expect(await stores.log.get('NEW')).toBeDefined();
      const points = await stores.stats.volume({ tenantId: 't1', from: now - 45 * DAY, to: now + 1, bucket: 'day' });
      const refused = points.flatMap((point) => Object.keys(point.refused));
      expect(refused, 'only the live refusal statistic is left').toEqual(['RATE_LIMIT_MINUTE']);
      expect(db.prepare('SELECT address FROM suppressions').all()).toEqual([{ address: 'fresh@example.org' }]);
      expect(await stores.fingerprints.countSenders('0123456789abcdef', 0, 0)).toBe(0);
      expect(await stores.fingerprints.countSenders('fedcba9876543210', 0, 0)).toBe(1);
      expect(db.prepare('SELECT key FROM counter_buckets').all()).toEqual([{ key: 'rate:hour:user:u2' }]);
      expect(await stores.counters.total('rate:hour:user:u2', HOUR)).toBe(1);
      expect(db.prepare('SELECT source FROM login_sources').all()).toEqual([{ source: '192.0.2.2' }]);
      expect(await stores.loginSources.isFamiliar('a@acme.test', '192.0.2.2', now)).toBe(true);
    } finally {
      db.close();
      stores.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
