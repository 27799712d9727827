// Housekeeping on any backend: removes what has outlived its retention — quarantined messages,
// learned fingerprints and bulk sightings, counter entries out of every window, login sources and
// suppressions past their expiry, old message log entries and refusal statistics. The single
// node runs it every 10 minutes; on AWS the housekeeping Lambda runs it on a schedule (there
// DynamoDB's TTL deletes most of it first, and this catches up with what TTL has not reached yet).
import type { Config } from './config.js';
import type { Clock } from './ports.js';
import type { Stores } from './ports/stores.js';
import { purgeQuarantine } from './scan/quarantine.js';

const DAY_MS = 86_400_000;

/** What one run removed, per store (for the log and the housekeeping metrics). */
export type HousekeepingCounts = Record<'counters' | 'loginSources' | 'suppressions' | 'messages' | 'refusalStatistics', number>;

export async function purgeExpired(
  stores: Pick<Stores, 'quarantine' | 'blobs' | 'log' | 'fingerprints' | 'counters' | 'loginSources' | 'suppression' | 'stats'>,
  config: Pick<Config, 'messageLog' | 'scanning'>,
  clock: Clock,
): Promise<HousekeepingCounts> {
  const now = clock.now();
  const logCutoff = now - config.messageLog.retentionDays * DAY_MS;
  await purgeQuarantine({ quarantine: stores.quarantine, blobs: stores.blobs, log: stores.log, clock }, config.scanning.quarantineRetentionDays);
  await stores.fingerprints.purgeOlderThan({
    learned: now - config.scanning.fingerprintRetentionDays * DAY_MS,
    sightings: now - config.scanning.bulkWindowMinutes * 60_000,
  });
  const counters = await stores.counters.purgeExpired();
  const loginSources = await stores.loginSources.purgeExpired(now);
  const suppressions = await stores.suppression.purgeExpired(now);
  const messages = await stores.log.purgeOlderThan(logCutoff);
  const refusalStatistics = await stores.stats.purgeOlderThan(logCutoff);
  return { counters, loginSources, suppressions, messages, refusalStatistics };
}
