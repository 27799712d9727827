// The single node's stores, opened on one data folder. The relay and the CLI both use this,
// so that the CLI works against the same data while the relay runs (SQLite in WAL mode).
// It gives the same `Stores` as the AWS wiring, plus what only the single node has: the SQLite
// queue (crash recovery, dead-letter alerts), a blob store that lists its files, and the few
// database-wide operations (backup, damaged entries, schema version) behind `database` — the
// SQLite handle itself stays in here.
import { join } from 'node:path';
import type { Config } from '../core/config.js';
import type { Stores } from '../core/ports/stores.js';
import { systemClock, type Clock } from '../core/ports.js';
import type { CounterStore } from '../core/counters.js';
import { SqliteApiKeyStore } from '../adapters/local/api-key-store.js';
import { SqliteAuditLog } from '../adapters/local/audit-log.js';
import { SqliteBatvKeyStore } from '../adapters/local/batv-key-store.js';
import { SqliteConfigStore } from '../adapters/local/config-store.js';
import { SqliteCounterStore } from '../adapters/local/counter-store.js';
import { SqliteDkimKeyStore } from '../adapters/local/dkim-key-store.js';
import { SqliteFingerprintStore } from '../adapters/local/fingerprint-store.js';
import { FsBlobStore } from '../adapters/local/fs-blob-store.js';
import { LocalBlobStore, SqliteMessageBodies } from '../adapters/local/message-body-store.js';
import { SqliteHoldStore } from '../adapters/local/hold-store.js';
import { SqliteLockStore } from '../adapters/local/lock-store.js';
import { SqliteLoginSourceStore } from '../adapters/local/login-source-store.js';
import { SqliteMessageLog } from '../adapters/local/message-log.js';
import { SqliteQuarantineStore } from '../adapters/local/quarantine-store.js';
import { SqliteQueue } from '../adapters/local/queue.js';
import { localSecretBox } from '../adapters/local/secret-box.js';
import { closeConnection, openDatabase, openSoftStateConnection, type Db } from '../adapters/local/sqlite.js';
import { backupDataFolder, type BackupSummary } from '../adapters/local/backup.js';
import { countDamagedEntries, listDamagedEntries, setAsideDamagedEntries, type DamagedEntry } from '../adapters/local/damaged-entries.js';
import { CachedCounterReads } from '../adapters/local/counter-reads.js';
import { SESSION_START_KEY_PREFIXES } from '../core/policy/keys.js';
import { cachedConfigReads, cachedLockReads, cachedSuppressionReads, ConfigReadCache } from '../adapters/local/config-reads.js';
import { schemaVersion } from '../adapters/local/migrations.js';
import { SqliteMessageStats } from '../adapters/local/stats-store.js';
import { SqliteSuppressionList } from '../adapters/local/suppression-store.js';

/** Database-wide operations of the single node (a backend concern: no port has them). */
export interface LocalDatabase {
  /** A consistent copy of the data folder into `destination` while the relay runs. */
  backup(destination: string): Promise<BackupSummary>;
  /** Sets aside queue entries damaged on disk (see adapters/local/damaged-entries.ts). */
  setAsideDamagedEntries(options: Parameters<typeof setAsideDamagedEntries>[1]): ReturnType<typeof setAsideDamagedEntries>;
  countDamagedEntries(): number;
  listDamagedEntries(limit?: number): DamagedEntry[];
  schemaVersion(): number;
}

export interface LocalStores extends Stores {
  queue: SqliteQueue;
  /** The queue as the scan and deliver stages use it (moves without an fsync each; see openLocalStores). */
  pipelineQueue: SqliteQueue;
  /** Message files, and the small bodies the acceptance batch committed inline (adapters/local/message-body-store.ts). */
  blobs: LocalBlobStore;
  database: LocalDatabase;
}

const handles = new WeakMap<LocalStores, Db>();

/**
 * The SQLite connection under a bundle, for tests that fault the database itself (a full disk is
 * a per-connection page limit). Nothing else reaches it: users of the stores go through ports.
 */
export function sqliteHandleForTests(stores: LocalStores): Db {
  return sqliteHandle(stores);
}

/** The main connection under a bundle opened by openLocalStores: the caches below read their generations on it. */
function sqliteHandle(stores: LocalStores): Db {
  const db = handles.get(stores);
  if (!db) throw new Error('these stores were not opened by openLocalStores');
  return db;
}

/**
 * The stores as the relay's thread reads them for each message: users, tenants, domains, locks and
 * suppression entries kept in memory until any connection changes them (adapters/local/config-reads.ts).
 */
export function withCachedConfigReads(stores: LocalStores): LocalStores {
  const cache = new ConfigReadCache(sqliteHandle(stores));
  return {
    ...stores,
    configStore: cachedConfigReads(stores.configStore, cache),
    lockStore: cachedLockReads(stores.lockStore, cache),
    suppression: cachedSuppressionReads(stores.suppression, cache),
  };
}

/**
 * `counters` (the relay's) with the buckets read for every new session (IP reputation at connect,
 * the blocks after failed logins at AUTH) kept in memory until any connection changes them
 * (adapters/local/counter-reads.ts).
 */
export function withCachedCounterReads(stores: LocalStores, counters: CounterStore, clock: Clock): CounterStore {
  return new CachedCounterReads(counters, new ConfigReadCache(sqliteHandle(stores), 'counter_generation'), SESSION_START_KEY_PREFIXES, clock);
}

export function openLocalStores(config: Config, clock: Clock = systemClock): LocalStores {
  const db: Db = openDatabase(join(config.dataDir, 'outpost.db'));
  // Soft state, committed without an fsync each (openSoftStateConnection): counters, the message
  // log's history, learned fingerprints and the queue consumers' receipts. Sending to a queue
  // (the promise behind a 250) stays on the main connection, fsynced at each commit.
  const softDb: Db = openSoftStateConnection(join(config.dataDir, 'outpost.db'));
  const box = localSecretBox(config.dataDir);
  const queue = new SqliteQueue(db, { maxReceives: config.queue.maxReceives, clock, receiptsDb: softDb });
  const stores: LocalStores = {
    clock,
    database: {
      backup: (destination) => backupDataFolder(config.dataDir, db, destination),
      setAsideDamagedEntries: (options) => setAsideDamagedEntries(db, options),
      countDamagedEntries: () => countDamagedEntries(db),
      listDamagedEntries: (limit) => listDamagedEntries(db, limit),
      schemaVersion: () => schemaVersion(db),
    },
    configStore: new SqliteConfigStore(db, clock),
    log: new SqliteMessageLog(softDb, clock),
    queue,
    /**
     * The queue as the scan and deliver stages use it: they move a message that is already queued
     * to its next queue, which needs no fsync of its own. A power cut may forget the last moves
     * together with everything after them (WAL keeps a prefix of the commits), so the message is
     * found where it was before and handled again.
     */
    pipelineQueue: new SqliteQueue(softDb, { maxReceives: config.queue.maxReceives, clock }),
    // Bodies committed inline by the acceptance batch are read and deleted on the soft-state
    // connection: a delete needs no fsync of its own (a power cut may forget it and leave the body
    // of a delivered message behind, as it may a deleted file).
    blobs: new LocalBlobStore(new FsBlobStore(join(config.dataDir, 'blobs')), new SqliteMessageBodies(softDb)),
    counters: new SqliteCounterStore(softDb, clock),
    lockStore: new SqliteLockStore(db),
    holdStore: new SqliteHoldStore(db),
    // Written at every successful AUTH, on the relay's thread: soft state (the places a user logs
    // in from, which a block after failed logins spares), so that a login pays no fsync.
    loginSources: new SqliteLoginSourceStore(softDb),
    fingerprints: new SqliteFingerprintStore(softDb),
    quarantine: new SqliteQuarantineStore(db),
    dkimKeys: new SqliteDkimKeyStore(db, box, clock),
    batvKeys: new SqliteBatvKeyStore(db, box),
    suppression: new SqliteSuppressionList(db, clock),
    apiKeys: new SqliteApiKeyStore(db),
    stats: new SqliteMessageStats(db),
    audit: new SqliteAuditLog(db, clock),
    close: () => {
      closeConnection(softDb);
      closeConnection(db);
    },
  };
  handles.set(stores, db);
  return stores;
}
