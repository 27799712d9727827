// Local stores (SQLite, filesystem) in a fresh data folder, for the use-case tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocalStores } from '../../../bin/local-stores.js';
import { parseConfig } from '../../../core/config.js';

export const T0 = Date.UTC(2026, 11, 2, 12);

export function freshStores(now: () => number = () => T0) {
  const dataDir = mkdtempSync(join(tmpdir(), 'outpost-app-'));
  return openLocalStores(parseConfig({ dataDir }), { now });
}
