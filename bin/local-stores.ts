// The single node's stores, opened on one data folder. The relay and the CLI both use this,
// so that the CLI works against the same data while the relay runs (SQLite in WAL mode).
import { join } from 'node:path';
import type { Config } from '../core/config.js';
import { systemClock, type Clock } from '../core/ports.js';
import { SqliteConfigStore } from '../adapters/local/config-store.js';
import { FsBlobStore } from '../adapters/local/fs-blob-store.js';
import { SqliteMessageLog } from '../adapters/local/message-log.js';
import { SqliteQueue } from '../adapters/local/queue.js';
import { openDatabase, type Db } from '../adapters/local/sqlite.js';

export interface LocalStores {
  db: Db;
  clock: Clock;
  configStore: SqliteConfigStore;
  log: SqliteMessageLog;
  queue: SqliteQueue;
  blobs: FsBlobStore;
  close(): void;
}

export function openLocalStores(config: Config, clock: Clock = systemClock): LocalStores {
  const db = openDatabase(join(config.dataDir, 'outpost.db'));
  return {
    db,
    clock,
    configStore: new SqliteConfigStore(db, clock),
    log: new SqliteMessageLog(db, clock),
    queue: new SqliteQueue(db, { maxReceives: config.queue.maxReceives, clock }),
    blobs: new FsBlobStore(join(config.dataDir, 'blobs')),
    close: () => db.close(),
  };
}
