import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteHoldStore } from '../../../adapters/local/hold-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { holdStoreContract } from '../../core/holds.contract.js';

holdStoreContract('SQLite (file, WAL)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-holds-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  // Opening twice (the relay and the CLI on one database) must not fail on existing tables.
  new SqliteHoldStore(db);
  return {
    store: new SqliteHoldStore(db),
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
