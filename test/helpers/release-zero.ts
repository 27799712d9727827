// A data folder as the first release (release 0) of the single node left it: its tables were
// created by each store's constructor and the database had no schema version (user_version 0).
// The DDL below is a frozen copy of that schema; the rows are written with plain SQL, as that
// release wrote them, so the upgrade test does not depend on today's stores to build its input.
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { secretBoxFromKey } from '../../adapters/local/secret-box.js';
import { generateDkimKeyPair } from '../../core/dkim/keys.js';
import { hashPassword } from '../../core/identity.js';

export const RELEASE_ZERO_SCHEMA = `
  CREATE TABLE tenants ( id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, settings TEXT NOT NULL DEFAULT '{}', suspended INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL );
  CREATE TABLE domains ( name TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE, created_at INTEGER NOT NULL );
  CREATE TABLE users ( id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE, kind TEXT NOT NULL CHECK (kind IN ('mailbox', 'domain', 'ip')), identity TEXT NOT NULL UNIQUE, domain TEXT, password_hash TEXT, settings TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL );
  CREATE INDEX users_tenant ON users (tenant_id);
  CREATE TABLE messages ( id TEXT PRIMARY KEY, tenant_id TEXT, user_id TEXT, identity TEXT, mail_from TEXT NOT NULL, rcpt_to TEXT NOT NULL, size INTEGER NOT NULL, subject TEXT, status TEXT NOT NULL, received_at INTEGER NOT NULL, updated_at INTEGER NOT NULL );
  CREATE INDEX messages_tenant_time ON messages (tenant_id, received_at);
  CREATE TABLE message_events ( seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL );
  CREATE INDEX message_events_message ON message_events (message_id, seq);
  CREATE TABLE queue_messages ( id TEXT PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL, visible_at INTEGER NOT NULL, receipt TEXT, receive_count INTEGER NOT NULL DEFAULT 0, sent_at INTEGER NOT NULL, first_received_at INTEGER );
  CREATE INDEX queue_messages_ready ON queue_messages (queue, visible_at);
  CREATE UNIQUE INDEX queue_messages_receipt ON queue_messages (receipt);
  CREATE TABLE counter_entries ( id INTEGER PRIMARY KEY, key TEXT NOT NULL, member TEXT, at INTEGER NOT NULL, units INTEGER NOT NULL, expires_at INTEGER NOT NULL, hold_tx TEXT, hold_item TEXT );
  CREATE INDEX counter_entries_key ON counter_entries (key, at);
  CREATE INDEX counter_entries_expiry ON counter_entries (expires_at);
  CREATE INDEX counter_entries_hold ON counter_entries (hold_tx) WHERE hold_tx IS NOT NULL;
  CREATE TABLE user_locks ( user_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, identity TEXT NOT NULL, locked INTEGER NOT NULL, permanent INTEGER NOT NULL, locked_at INTEGER, until INTEGER, reasons TEXT NOT NULL, timed_unlocks INTEGER NOT NULL, version INTEGER NOT NULL );
  CREATE INDEX user_locks_locked ON user_locks (locked, tenant_id);
  CREATE TABLE user_lock_events ( id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, tenant_id TEXT NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL );
  CREATE INDEX user_lock_events_user ON user_lock_events (user_id, at);
  CREATE TABLE blocked_hashes ( sha256 TEXT PRIMARY KEY, source TEXT NOT NULL CHECK (source IN ('operator', 'virus', 'spam')), reason TEXT NOT NULL, added_at INTEGER NOT NULL );
  CREATE TABLE spam_fingerprints ( fingerprint TEXT PRIMARY KEY, b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL, b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL, added_at INTEGER NOT NULL );
  CREATE TABLE fingerprint_sightings ( fingerprint TEXT NOT NULL, b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL, b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL, identity TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (fingerprint, identity) );
  CREATE INDEX fingerprint_sightings_at ON fingerprint_sightings (at);
  CREATE INDEX spam_fingerprints_b0 ON spam_fingerprints (b0);
  CREATE INDEX spam_fingerprints_b1 ON spam_fingerprints (b1);
  CREATE INDEX spam_fingerprints_b2 ON spam_fingerprints (b2);
  CREATE INDEX spam_fingerprints_b3 ON spam_fingerprints (b3);
  CREATE INDEX spam_fingerprints_b4 ON spam_fingerprints (b4);
  CREATE INDEX spam_fingerprints_b5 ON spam_fingerprints (b5);
  CREATE INDEX spam_fingerprints_b6 ON spam_fingerprints (b6);
  CREATE INDEX spam_fingerprints_b7 ON spam_fingerprints (b7);
  CREATE INDEX fingerprint_sightings_b0 ON fingerprint_sightings (b0);
  CREATE INDEX fingerprint_sightings_b1 ON fingerprint_sightings (b1);
  CREATE INDEX fingerprint_sightings_b2 ON fingerprint_sightings (b2);
  CREATE INDEX fingerprint_sightings_b3 ON fingerprint_sightings (b3);
  CREATE INDEX fingerprint_sightings_b4 ON fingerprint_sightings (b4);
  CREATE INDEX fingerprint_sightings_b5 ON fingerprint_sightings (b5);
  CREATE INDEX fingerprint_sightings_b6 ON fingerprint_sightings (b6);
  CREATE INDEX fingerprint_sightings_b7 ON fingerprint_sightings (b7);
  CREATE TABLE quarantine ( message_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT, blob_key TEXT NOT NULL, quarantined_at INTEGER NOT NULL, envelope TEXT NOT NULL, symbols TEXT NOT NULL );
  CREATE INDEX quarantine_tenant_time ON quarantine (tenant_id, quarantined_at);
  CREATE INDEX quarantine_time ON quarantine (quarantined_at);
  CREATE TABLE dkim_keys ( domain TEXT NOT NULL, selector TEXT NOT NULL, algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')), public_key TEXT NOT NULL, sealed_private_key TEXT NOT NULL, is_default INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, PRIMARY KEY (domain, selector) );
  CREATE TABLE batv_keys ( key_index INTEGER PRIMARY KEY CHECK (key_index BETWEEN 0 AND 9), sealed_secret TEXT NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER );
  CREATE TABLE suppressions ( tenant_id TEXT NOT NULL, address TEXT NOT NULL, source TEXT NOT NULL CHECK (source IN ('bounce', 'manual')), reason TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY (tenant_id, address) );
  CREATE TABLE api_keys ( id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, secret_hash TEXT NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER );
  CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
  CREATE TABLE smtp_refusals ( tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, hour INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (tenant_id, user_id, hour, reason) );
`;

/** Creates `path` with the release-0 schema, lets `fill` write rows, and closes it (user_version stays 0). */
export function buildReleaseZeroDatabase(path: string, fill: (db: Database.Database) => void = () => {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(RELEASE_ZERO_SCHEMA);
  db.transaction(() => fill(db))();
  db.close();
}

export interface ReleaseZeroFolder {
  tenantId: string;
  domain: string;
  /** A mailbox user with per-user settings; logs in with `password`. */
  user: { id: string; identity: string; password: string; settings: Record<string, unknown> };
  /** A user under a permanent lock. */
  lockedUser: { id: string; identity: string };
  /** An IP user (smarthost traffic) for 127.0.0.1. */
  ipUser: { id: string; identity: string };
  tenantSettings: Record<string, unknown>;
  dkim: { selector: string; publicKey: string };
  batvSecret: Buffer;
  apiToken: string;
  /** Queue ids of messages accepted (250) by release 0 and still waiting in its scan queue. */
  queued: string[];
  recipient: string;
}

/**
 * A release-0 data folder at `dataDir`: a tenant with its domain, users with settings, a lock,
 * a DKIM key and a BATV key sealed under the folder's secret key file, an API key, and `count`
 * messages accepted but not yet scanned (queue rows in 'scan', message log rows, message files).
 */
export async function buildReleaseZeroFolder(dataDir: string, options: { count?: number; now?: number } = {}): Promise<ReleaseZeroFolder> {
  const now = options.now ?? Date.now();
  const count = options.count ?? 3;
  mkdirSync(dataDir, { recursive: true });
  const secretKey = randomBytes(32);
  writeFileSync(join(dataDir, 'secret-box.key'), secretKey, { mode: 0o600 });
  const box = secretBoxFromKey(secretKey);
  const domain = 'acme.test';
  const recipient = 'someone@example.org';
  const tenantSettings = { mailsPerHour: 5000, bounceValidation: true };
  const userSettings = { mailsPerMinute: 77, maxRecipientsPerDay: 4321, dkimSelector: 'r0sel' };
  const password = 'release zero password';
  const passwordHash = await hashPassword(password);
  const dkim = await generateDkimKeyPair('ed25519');
  const batvSecret = randomBytes(32);
  const apiId = randomBytes(8).toString('hex');
  const apiSecret = randomBytes(32).toString('base64url');
  const ids = { tenant: 't-release-zero', user: 'u-alice', locked: 'u-mallory', ip: 'u-smarthost' };
  const queued = Array.from({ length: count }, (_, i) => `R0${now.toString(36).toUpperCase()}${String(i).padStart(4, '0')}`);
  const day = new Date(now).toISOString().slice(0, 10);

  buildReleaseZeroDatabase(join(dataDir, 'outpost.db'), (db) => {
    db.prepare('INSERT INTO tenants (id, name, settings, suspended, created_at) VALUES (?, ?, ?, 0, ?)').run(ids.tenant, 'acme', JSON.stringify(tenantSettings), now);
    db.prepare('INSERT INTO domains (name, tenant_id, created_at) VALUES (?, ?, ?)').run(domain, ids.tenant, now);
    const user = db.prepare('INSERT INTO users (id, tenant_id, kind, identity, domain, password_hash, settings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    user.run(ids.user, ids.tenant, 'mailbox', `alice@${domain}`, domain, passwordHash, JSON.stringify(userSettings), now);
    user.run(ids.locked, ids.tenant, 'mailbox', `mallory@${domain}`, domain, passwordHash, '{}', now);
    user.run(ids.ip, ids.tenant, 'ip', '127.0.0.1/32', null, null, '{}', now);
    db.prepare(
      `INSERT INTO user_locks (user_id, tenant_id, identity, locked, permanent, locked_at, until, reasons, timed_unlocks, version)
       VALUES (?, ?, ?, 1, 1, ?, NULL, ?, 2, 3)`,
    ).run(ids.locked, ids.tenant, `mallory@${domain}`, now, JSON.stringify([{ name: 'VIRUS_FOUND', evidence: { signature: 'Eicar-Test' } }]));
    db.prepare('INSERT INTO user_lock_events (user_id, tenant_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)').run(ids.locked, ids.tenant, now, 'locked', '{}');
    db.prepare(
      `INSERT INTO dkim_keys (domain, selector, algorithm, public_key, sealed_private_key, is_default, created_at) VALUES (?, ?, 'ed25519', ?, ?, 1, ?)`,
    ).run(domain, 'r0sel', dkim.publicKey, box.seal(Buffer.from(dkim.privateKeyPem, 'utf8')), now);
    db.prepare('INSERT INTO batv_keys (key_index, sealed_secret, created_at, retired_at) VALUES (3, ?, ?, NULL)').run(box.seal(batvSecret), now);
    db.prepare('INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, NULL)').run(
      apiId,
      ids.tenant,
      'release zero key',
      createHash('sha256').update(apiSecret, 'utf8').digest('hex'),
      now,
    );
    for (const [i, id] of queued.entries()) {
      const blobKey = `messages/${day}/${id}.eml`;
      const raw = Buffer.from(
        [
          `Received: from client.test ([127.0.0.1])`,
          `\tby relay.test (Outpost) with ESMTPSA id ${id};`,
          `\t${new Date(now).toUTCString().replace('GMT', '+0000')}`,
          `From: alice@${domain}`,
          `To: ${recipient}`,
          `Subject: accepted by release zero ${i}`,
          `Date: ${new Date(now).toUTCString()}`,
          `Message-ID: <release-zero-${i}@client.test>`,
          '',
          `Queued before the upgrade, number ${i}.`,
          '',
        ].join('\r\n'),
      );
      const path = join(dataDir, 'blobs', blobKey);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, raw);
      const envelope = {
        messageId: id, tenantId: ids.tenant, userId: ids.user, identity: `alice@${domain}`, mailFrom: `alice@${domain}`,
        rcptTo: [recipient], blobKey, size: raw.length, receivedAt: now, clientIp: '127.0.0.1', helo: 'client.test',
      };
      db.prepare(
        `INSERT INTO messages (id, tenant_id, user_id, identity, mail_from, rcpt_to, size, subject, status, received_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
      ).run(id, ids.tenant, ids.user, envelope.identity, envelope.mailFrom, JSON.stringify([recipient]), raw.length, `accepted by release zero ${i}`, now, now);
      db.prepare('INSERT INTO message_events (message_id, at, event, detail) VALUES (?, ?, ?, ?)').run(id, now, 'received', '{}');
      db.prepare('INSERT INTO queue_messages (id, queue, body, visible_at, sent_at) VALUES (?, ?, ?, ?, ?)').run(`q-${id}`, 'scan', JSON.stringify(envelope), now, now);
    }
  });
  return {
    tenantId: ids.tenant,
    domain,
    user: { id: ids.user, identity: `alice@${domain}`, password, settings: userSettings },
    lockedUser: { id: ids.locked, identity: `mallory@${domain}` },
    ipUser: { id: ids.ip, identity: '127.0.0.1/32' },
    tenantSettings,
    dkim: { selector: 'r0sel', publicKey: dkim.publicKey },
    batvSecret,
    apiToken: `opk_${apiId}_${apiSecret}`,
    queued,
    recipient,
  };
}
