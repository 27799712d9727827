// The single node's stores, opened on one data folder. The relay and the CLI both use this,
// so that the CLI works against the same data while the relay runs (SQLite in WAL mode).
import { join } from 'node:path';
import type { Config } from '../core/config.js';
import { systemClock, type Clock } from '../core/ports.js';
import { SqliteApiKeyStore } from '../adapters/local/api-key-store.js';
import { SqliteAuditLog } from '../adapters/local/audit-log.js';
import { SqliteBatvKeyStore } from '../adapters/local/batv-key-store.js';
import { SqliteConfigStore } from '../adapters/local/config-store.js';
import { SqliteCounterStore } from '../adapters/local/counter-store.js';
import { SqliteDkimKeyStore } from '../adapters/local/dkim-key-store.js';
import { SqliteFingerprintStore } from '../adapters/local/fingerprint-store.js';
import { FsBlobStore } from '../adapters/local/fs-blob-store.js';
import { SqliteHoldStore } from '../adapters/local/hold-store.js';
import { SqliteLockStore } from '../adapters/local/lock-store.js';
import { SqliteLoginSourceStore } from '../adapters/local/login-source-store.js';
import { SqliteMessageLog } from '../adapters/local/message-log.js';
import { SqliteQuarantineStore } from '../adapters/local/quarantine-store.js';
import { SqliteQueue } from '../adapters/local/queue.js';
import { openLocalSecretBox } from '../adapters/local/secret-box.js';
import { openDatabase, openSoftStateConnection, type Db } from '../adapters/local/sqlite.js';
import { SqliteMessageStats } from '../adapters/local/stats-store.js';
import { SqliteSuppressionList } from '../adapters/local/suppression-store.js';

export function openLocalStores(config: Config, clock: Clock = systemClock) {
  const db: Db = openDatabase(join(config.dataDir, 'outpost.db'));
  // Soft state, committed without an fsync each (openSoftStateConnection): counters, the message
  // log's history, learned fingerprints and the queue consumers' receipts. Sending to a queue
  // (the promise behind a 250) stays on the main connection, fsynced at each commit.
  const softDb: Db = openSoftStateConnection(join(config.dataDir, 'outpost.db'));
  const box = openLocalSecretBox(config.dataDir);
  return {
    db,
    clock,
    configStore: new SqliteConfigStore(db, clock),
    log: new SqliteMessageLog(softDb, clock),
    queue: new SqliteQueue(db, { maxReceives: config.queue.maxReceives, clock, receiptsDb: softDb }),
    /**
     * The queue as the scan and deliver stages use it: they move a message that is already queued
     * to its next queue, which needs no fsync of its own. A power cut may forget the last moves
     * together with everything after them (WAL keeps a prefix of the commits), so the message is
     * found where it was before and handled again.
     */
    pipelineQueue: new SqliteQueue(softDb, { maxReceives: config.queue.maxReceives, clock }),
    blobs: new FsBlobStore(join(config.dataDir, 'blobs')),
    counters: new SqliteCounterStore(softDb, clock),
    lockStore: new SqliteLockStore(db),
    holdStore: new SqliteHoldStore(db),
    loginSources: new SqliteLoginSourceStore(db),
    fingerprints: new SqliteFingerprintStore(softDb),
    quarantine: new SqliteQuarantineStore(db),
    dkimKeys: new SqliteDkimKeyStore(db, box, clock),
    batvKeys: new SqliteBatvKeyStore(db, box),
    suppression: new SqliteSuppressionList(db, clock),
    apiKeys: new SqliteApiKeyStore(db),
    stats: new SqliteMessageStats(db),
    audit: new SqliteAuditLog(db, clock),
    close: () => {
      softDb.close();
      db.close();
    },
  };
}

export type LocalStores = ReturnType<typeof openLocalStores>;
