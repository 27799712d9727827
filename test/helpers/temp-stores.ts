// The single node's stores (SQLite and the filesystem) in a folder of their own, for a test:
// `openTempStores` opens them, `closeTempStores` (in afterEach) closes and deletes every one opened.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalStores, type LocalStores } from '../../bin/local-stores.js';
import { parseConfig, type Config } from '../../core/config.js';
import { systemClock, type Clock } from '../../core/ports.js';

const opened: Array<{ stores: LocalStores; dir: string }> = [];

/** Opens the stores in a new temporary folder; `settings` are config file keys (dataDir is set). */
export async function openTempStores(prefix: string, settings: Record<string, unknown> = {}, clock: Clock = systemClock): Promise<{ stores: LocalStores; config: Config; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), `outpost-${prefix}-`));
  const config = parseConfig({ ...settings, dataDir: dir });
  const stores = openLocalStores(config, clock);
  opened.push({ stores, dir });
  return { stores, config, dir };
}

export async function closeTempStores(): Promise<void> {
  for (const { stores, dir } of opened.splice(0)) {
    stores.close();
    await rm(dir, { recursive: true, force: true });
  }
}
