// The single node's database schema, as an ordered list of migrations. `PRAGMA user_version`
// holds the number of migrations applied; `openDatabase` applies the missing ones, in order, each
// in its own IMMEDIATE transaction, so a relay and a CLI started together cannot both apply one.
//
// To change the schema, append one entry to MIGRATIONS (never edit or reorder a released one:
// data folders in the field have already run it):
//   { version: <last + 1>, name: 'what it adds', up: (db) => db.exec(`ALTER TABLE … ADD COLUMN …`) }
// A new table is a `CREATE TABLE`, a new column an `ALTER TABLE … ADD COLUMN` with a default (old
// rows get it), a changed column a copy into a new table. The store that uses the change reads
// and writes it; nothing creates tables in a store's constructor. test/e2e/upgrade.test.ts starts
// the current code on a folder made by the first release and must stay green.
import { ipRangeBucket } from '../../core/ip-user-lookup.js';
import type { Db } from './sqlite.js';

export interface Migration {
  version: number;
  name: string;
  up(db: Db): void;
}

/** Release 0 created its tables from each store's constructor, with no version; this is that schema. */
const initialSchema = `
  CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL DEFAULT '{}',
    suspended INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS domains (
    name TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('mailbox', 'domain', 'ip')),
    identity TEXT NOT NULL UNIQUE,
    domain TEXT,
    password_hash TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS users_tenant ON users (tenant_id);

  CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    tenant_id TEXT,
    user_id TEXT,
    identity TEXT,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    size INTEGER NOT NULL,
    subject TEXT,
    status TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS messages_tenant_time ON messages (tenant_id, received_at);
  CREATE TABLE IF NOT EXISTS message_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS message_events_message ON message_events (message_id, seq);

  CREATE TABLE IF NOT EXISTS queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receipt TEXT,
    receive_count INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER NOT NULL,
    first_received_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (queue, visible_at);
  CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt);

  CREATE TABLE IF NOT EXISTS counter_entries (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    member TEXT,
    at INTEGER NOT NULL,
    units INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    hold_tx TEXT,
    hold_item TEXT
  );
  CREATE INDEX IF NOT EXISTS counter_entries_key ON counter_entries (key, at);
  CREATE INDEX IF NOT EXISTS counter_entries_expiry ON counter_entries (expires_at);
  CREATE INDEX IF NOT EXISTS counter_entries_hold ON counter_entries (hold_tx) WHERE hold_tx IS NOT NULL;

  CREATE TABLE IF NOT EXISTS user_locks (
    user_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    identity TEXT NOT NULL,
    locked INTEGER NOT NULL,
    permanent INTEGER NOT NULL,
    locked_at INTEGER,
    until INTEGER,
    reasons TEXT NOT NULL,
    timed_unlocks INTEGER NOT NULL,
    version INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS user_locks_locked ON user_locks (locked, tenant_id);
  CREATE TABLE IF NOT EXISTS user_lock_events (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS user_lock_events_user ON user_lock_events (user_id, at);

  CREATE TABLE IF NOT EXISTS blocked_hashes (
    sha256 TEXT PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('operator', 'virus', 'spam')),
    reason TEXT NOT NULL,
    added_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS spam_fingerprints (
    fingerprint TEXT PRIMARY KEY,
    b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
    b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
    added_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS fingerprint_sightings (
    fingerprint TEXT NOT NULL,
    b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
    b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
    identity TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, identity)
  );
  CREATE INDEX IF NOT EXISTS fingerprint_sightings_at ON fingerprint_sightings (at);
  ${['spam_fingerprints', 'fingerprint_sightings']
    .flatMap((table) => ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7'].map((band) => `CREATE INDEX IF NOT EXISTS ${table}_${band} ON ${table} (${band});`))
    .join('\n  ')}

  CREATE TABLE IF NOT EXISTS quarantine (
    message_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT,
    blob_key TEXT NOT NULL,
    quarantined_at INTEGER NOT NULL,
    envelope TEXT NOT NULL,
    symbols TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS quarantine_tenant_time ON quarantine (tenant_id, quarantined_at);
  CREATE INDEX IF NOT EXISTS quarantine_time ON quarantine (quarantined_at);

  CREATE TABLE IF NOT EXISTS dkim_keys (
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
    public_key TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (domain, selector)
  );
  CREATE TABLE IF NOT EXISTS batv_keys (
    key_index INTEGER PRIMARY KEY CHECK (key_index BETWEEN 0 AND 9),
    sealed_secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
  );

  CREATE TABLE IF NOT EXISTS suppressions (
    tenant_id TEXT NOT NULL,
    address TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('bounce', 'manual')),
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (tenant_id, address)
  );

  CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant_id, created_at);

  CREATE TABLE IF NOT EXISTS smtp_refusals (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, hour, reason)
  );
`;

export const MIGRATIONS: readonly Migration[] = [
  // IF NOT EXISTS: a folder from release 0 already has these tables (with user_version 0).
  { version: 1, name: 'initial schema', up: (db) => db.exec(initialSchema) },
  {
    version: 2,
    name: 'damaged queue entries found at start-up',
    up: (db) =>
      db.exec(`
        CREATE TABLE damaged_entries (
          id INTEGER PRIMARY KEY,
          queue TEXT NOT NULL,
          queue_message_id TEXT NOT NULL,
          message_id TEXT,
          action TEXT NOT NULL CHECK (action IN ('set-aside', 'bounced')),
          body TEXT NOT NULL,
          reason TEXT NOT NULL,
          moved_blob TEXT,
          found_at INTEGER NOT NULL
        );
      `),
  },
  {
    version: 3,
    name: 'tenant boundaries: domain claims, ceilings, who placed a lock, audit log',
    up: (db) =>
      db.exec(`
        CREATE TABLE domain_claims (
          name TEXT NOT NULL,
          tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
          token TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          PRIMARY KEY (tenant_id, name)
        );
        CREATE INDEX domain_claims_name ON domain_claims (name);
        ALTER TABLE tenants ADD COLUMN ceilings TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE user_locks ADD COLUMN placed_by TEXT;
        CREATE TABLE audit_events (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          at INTEGER NOT NULL,
          tenant_id TEXT,
          actor TEXT NOT NULL,
          action TEXT NOT NULL,
          target TEXT NOT NULL,
          detail TEXT NOT NULL
        );
        CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
      `),
  },
  {
    version: 4,
    name: 'held mail of locked or held senders',
    up: (db) =>
      db.exec(`
        CREATE TABLE held_messages (
          id TEXT PRIMARY KEY,
          message_id TEXT NOT NULL,
          tenant_id TEXT NOT NULL,
          user_id TEXT NOT NULL,
          identity TEXT NOT NULL,
          stage TEXT NOT NULL,
          body TEXT NOT NULL,
          blob_key TEXT NOT NULL,
          reason TEXT NOT NULL,
          held_at INTEGER NOT NULL,
          claim TEXT,
          claimed_at INTEGER
        );
        CREATE INDEX held_messages_user ON held_messages (user_id, held_at);
        CREATE INDEX held_messages_tenant ON held_messages (tenant_id, held_at);
        CREATE TABLE sender_holds (
          user_id TEXT PRIMARY KEY,
          tenant_id TEXT NOT NULL,
          identity TEXT NOT NULL,
          held_by TEXT NOT NULL,
          at INTEGER NOT NULL
        );
      `),
  },
  {
    version: 5,
    name: 'sources each login succeeded from (smart lockout)',
    up: (db) =>
      db.exec(`
        CREATE TABLE login_sources (
          login TEXT NOT NULL,
          source TEXT NOT NULL,
          last_success INTEGER NOT NULL,
          expires_at INTEGER NOT NULL,
          PRIMARY KEY (login, source)
        );
        CREATE INDEX login_sources_expiry ON login_sources (expires_at);
      `),
  },
  {
    // Counters are soft state: the log's entries are dropped, not converted (limits start afresh).
    version: 6,
    name: 'counters as per-second buckets with a running sum (replaces the sliding window log)',
    up: (db) =>
      db.exec(`
        DROP TABLE counter_entries;
        CREATE TABLE counter_heads (
          key TEXT PRIMARY KEY,
          window_ms INTEGER NOT NULL,
          total INTEGER NOT NULL,
          live_until INTEGER NOT NULL
        );
        CREATE INDEX counter_heads_live ON counter_heads (live_until);
        CREATE TABLE counter_buckets (
          key TEXT NOT NULL,
          at INTEGER NOT NULL,
          units INTEGER NOT NULL,
          PRIMARY KEY (key, at)
        ) WITHOUT ROWID;
        CREATE TABLE counter_members (
          key TEXT NOT NULL,
          member TEXT NOT NULL,
          seen INTEGER NOT NULL,
          committed INTEGER,
          PRIMARY KEY (key, member)
        ) WITHOUT ROWID;
        CREATE INDEX counter_members_seen ON counter_members (key, seen);
        CREATE TABLE counter_holds (
          id INTEGER PRIMARY KEY,
          tx TEXT NOT NULL,
          item TEXT NOT NULL,
          key TEXT NOT NULL,
          member TEXT,
          at INTEGER NOT NULL,
          units INTEGER NOT NULL,
          leaves_at INTEGER NOT NULL
        );
        CREATE INDEX counter_holds_tx ON counter_holds (tx);
        CREATE INDEX counter_holds_member ON counter_holds (key, member);
        CREATE INDEX counter_holds_leaves ON counter_holds (leaves_at);
      `),
  },
  {
    version: 7,
    name: 'message log: running counts of events (gauges), provider message ids (SES events)',
    up: (db) =>
      db.exec(`
        CREATE TABLE message_event_counts (
          event TEXT PRIMARY KEY,
          count INTEGER NOT NULL
        );
        INSERT INTO message_event_counts (event, count) SELECT event, COUNT(*) FROM message_events GROUP BY event;
        CREATE TABLE provider_message_ids (
          provider_id TEXT PRIMARY KEY,
          message_id TEXT NOT NULL
        );
        CREATE INDEX provider_message_ids_message ON provider_message_ids (message_id);
      `),
  },
  {
    version: 8,
    name: 'IP users filed by network, so the ingress finds one without reading them all',
    up: (db) => {
      db.exec(`
        ALTER TABLE users ADD COLUMN ip_bucket TEXT;
        CREATE INDEX users_ip_bucket ON users (ip_bucket) WHERE ip_bucket IS NOT NULL;
      `);
      const file = db.prepare('UPDATE users SET ip_bucket = ? WHERE id = ?');
      for (const user of db.prepare("SELECT id, identity FROM users WHERE kind = 'ip'").all() as Array<{ id: string; identity: string }>) {
        file.run(ipRangeBucket(user.identity), user.id);
      }
    },
  },
  {
    version: 9,
    name: 'Small message bodies in the database, written in the commit that queues them',
    up: (db) =>
      db.exec(`
        CREATE TABLE message_bodies (
          key TEXT PRIMARY KEY,
          body BLOB NOT NULL,
          stored_at INTEGER NOT NULL
        );
      `),
  },
  {
    // Every RCPT writes a head and holds and every accepted message deletes the holds: indexes
    // that only housekeeping read (it scans these small tables whole anyway) cost a page written
    // per commit, so the holds are stored in transaction order (no separate index to find them)
    // and only a held sighting is indexed. `oldest` (a lower bound of the key's oldest bucket or
    // member, 0 = unknown) lets a write skip looking for uses that left the window while none can
    // have. Holds of one transaction, item, key and second are one row (their units summed).
    version: 10,
    name: 'counters: oldest use per head; holds stored by transaction; fewer indexes written per reservation',
    up: (db) =>
      db.exec(`
        ALTER TABLE counter_heads ADD COLUMN oldest INTEGER NOT NULL DEFAULT 0;
        DROP INDEX counter_heads_live;
        CREATE TABLE counter_holds_by_tx (
          tx TEXT NOT NULL,
          item TEXT NOT NULL,
          key TEXT NOT NULL,
          member TEXT NOT NULL,
          sighting INTEGER NOT NULL,
          at INTEGER NOT NULL,
          units INTEGER NOT NULL,
          leaves_at INTEGER NOT NULL,
          PRIMARY KEY (tx, item, key, member, at)
        ) WITHOUT ROWID;
        INSERT INTO counter_holds_by_tx (tx, item, key, member, sighting, at, units, leaves_at)
          SELECT tx, item, key, COALESCE(member, ''), member IS NOT NULL, at, SUM(units), MAX(leaves_at)
          FROM counter_holds GROUP BY tx, item, key, COALESCE(member, ''), at;
        DROP TABLE counter_holds;
        ALTER TABLE counter_holds_by_tx RENAME TO counter_holds;
        CREATE INDEX counter_holds_sighting ON counter_holds (key, member, at) WHERE sighting = 1;
      `),
  },
  {
    // The relay's thread keeps the tenants, domains, users and locks it reads for each message
    // (adapters/local/config-reads.ts); a change by any connection (the API, the CLI, the
    // pipeline locking a user) moves this number on, and the kept copies are dropped.
    version: 11,
    name: 'a generation of the configuration the ingress reads, moved on by every change to it',
    up: (db) =>
      db.exec(`
        CREATE TABLE config_generation (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          n INTEGER NOT NULL
        );
        INSERT INTO config_generation (id, n) VALUES (1, 0);
        ${CONFIG_TABLES.flatMap((table) =>
          ['INSERT', 'UPDATE', 'DELETE'].map(
            (change) => `CREATE TRIGGER config_generation_${table}_${change.toLowerCase()} AFTER ${change} ON ${table} BEGIN UPDATE config_generation SET n = n + 1 WHERE id = 1; END;`,
          ),
        ).join('\n        ')}
      `),
  },
  {
    // The relay's thread keeps the suppression entries it looks up at RCPT too (config-reads.ts):
    // the API and the CLI change them, and the pipeline adds one for each hard bounce.
    version: 12,
    name: 'every change to a suppression list moves the configuration generation on',
    up: (db) =>
      db.exec(
        ['INSERT', 'UPDATE', 'DELETE']
          .map((change) => `CREATE TRIGGER config_generation_suppressions_${change.toLowerCase()} AFTER ${change} ON suppressions BEGIN UPDATE config_generation SET n = n + 1 WHERE id = 1; END;`)
          .join('\n'),
      ),
  },
  {
    // The relay's thread keeps the counter buckets it reads for every connection and every AUTH
    // (adapters/local/counter-reads.ts): an address's reputation and the blocks after failed
    // logins. The pipeline thread, the API and the CLI change them too (a verdict, an unlock), so
    // every change to their buckets moves this number on, and the kept copies are dropped. The
    // other keys (the rate limits written once a second among them) leave it alone.
    version: 13,
    name: 'a generation of the counters the ingress reads at connect and AUTH, moved on by every change to their buckets',
    up: (db) =>
      db.exec(`
        CREATE TABLE counter_generation (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          n INTEGER NOT NULL
        );
        INSERT INTO counter_generation (id, n) VALUES (1, 0);
        CREATE TRIGGER counter_generation_insert AFTER INSERT ON counter_buckets
          WHEN ${readAtSessionStart('NEW')}
          BEGIN UPDATE counter_generation SET n = n + 1 WHERE id = 1; END;
        CREATE TRIGGER counter_generation_update AFTER UPDATE ON counter_buckets
          WHEN ${readAtSessionStart('NEW')} OR ${readAtSessionStart('OLD')}
          BEGIN UPDATE counter_generation SET n = n + 1 WHERE id = 1; END;
        CREATE TRIGGER counter_generation_delete AFTER DELETE ON counter_buckets
          WHEN ${readAtSessionStart('OLD')}
          BEGIN UPDATE counter_generation SET n = n + 1 WHERE id = 1; END;
      `),
  },
  {
    // A queue entry has a receipt handle only while it is received (in flight); a waiting one has
    // none. The unique index on handles held an entry for every waiting message too: each group
    // commit that queues messages wrote a page of it (one of the 15 pages a commit of one message
    // writes), and each receive moved the entry. Entries are only ever looked up by a handle
    // (`receipt = ?`, which implies that it is not null, so SQLite uses the partial index).
    version: 14,
    name: 'the queue receipt index holds only entries that have a receipt',
    up: (db) =>
      db.exec(`
        DROP INDEX IF EXISTS queue_messages_receipt;
        CREATE UNIQUE INDEX queue_messages_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
      `),
  },
];

/** SQL: whether the counter_buckets row `row` (NEW or OLD) belongs to a key of migration 13 (its prefixes, fixed there). */
function readAtSessionStart(row: 'NEW' | 'OLD'): string {
  return `(substr(${row}.key, 1, 11) = 'reputation:' OR substr(${row}.key, 1, 10) = 'authblock:')`;
}

/** The tables whose every change moves config_generation on (migration 11; suppressions since migration 12). */
export const CONFIG_TABLES = ['tenants', 'domains', 'domain_claims', 'users', 'user_locks'] as const;

export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
}

export function schemaVersion(db: Db): number {
  const version: unknown = db.pragma('user_version', { simple: true });
  return typeof version === 'number' ? version : 0;
}

/** The newest schema this code knows. */
export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((latest, migration) => Math.max(latest, migration.version), 0);

/**
 * Brings the database to LATEST_SCHEMA_VERSION; returns the migrations it applied. A database
 * written by a newer release is refused rather than used: this code would not know its columns.
 */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Migration[] {
  const latest = migrations.reduce((max, migration) => Math.max(max, migration.version), 0);
  const found = schemaVersion(db);
  if (found > latest) {
    throw new SchemaTooNewError(`the database has schema version ${found}, newer than this release knows (${latest}); run the newer release, or restore a backup made by this one`);
  }
  const applied: Migration[] = [];
  for (const migration of [...migrations].sort((x, y) => x.version - y.version)) {
    const ran = db
      .transaction(() => {
        // Read again inside the write lock: another process may have applied it meanwhile.
        if (schemaVersion(db) >= migration.version) return false;
        migration.up(db);
        db.pragma(`user_version = ${migration.version}`);
        return true;
      })
      .immediate();
    if (ran) applied.push(migration);
  }
  return applied;
}
