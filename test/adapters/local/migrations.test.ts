// The schema is versioned: openDatabase applies the missing migrations once, in order; a folder
// from release 0 (tables, no version) is brought forward; a newer schema is refused.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate, schemaVersion, SchemaTooNewError, type Migration } from '../../../adapters/local/migrations.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { buildReleaseZeroDatabase } from '../../helpers/release-zero.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-migrations-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const tables = (db: Database.Database): string[] =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((row) => row.name);

describe('schema migrations', () => {
  it('numbers migrations 1, 2, 3… without gaps', () => {
    expect(MIGRATIONS.map((migration) => migration.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });

  it('creates the whole schema on a new database and records its version', () => {
    const db = openDatabase(':memory:');
    expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
    expect(tables(db)).toEqual(expect.arrayContaining(['tenants', 'users', 'queue_messages', 'user_locks', 'dkim_keys', 'batv_keys', 'api_keys', 'damaged_entries']));
  });

  it('brings a release-0 database (tables, user_version 0) forward without touching its rows', () => {
    const path = join(tempDir(), 'outpost.db');
    buildReleaseZeroDatabase(path, (db) => {
      db.prepare("INSERT INTO tenants (id, name, settings, suspended, created_at) VALUES ('t1', 'acme', '{}', 0, 1)").run();
    });
    const db = openDatabase(path);
    expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
    expect(db.prepare('SELECT name FROM tenants').all()).toEqual([{ name: 'acme' }]);
    db.close();
  });

  it('applies a migration once, even when two openers race for it', () => {
    const path = join(tempDir(), 'outpost.db');
    const first = openDatabase(path);
    const second = openDatabase(path);
    const next: Migration = { version: LATEST_SCHEMA_VERSION + 1, name: 'add a column', up: (db) => db.exec('ALTER TABLE tenants ADD COLUMN note TEXT') };
    expect(migrate(first, [...MIGRATIONS, next]).map((m) => m.version)).toEqual([next.version]);
    // The second opener finds the version already taken and does not run the ALTER again.
    expect(migrate(second, [...MIGRATIONS, next])).toEqual([]);
    expect(schemaVersion(second)).toBe(next.version);
    first.close();
    second.close();
  });

  it('leaves a database as it was when a migration fails half-way (the disk full after migration 14 dropped the receipt index), and applies it at the next start', () => {
    const path = join(tempDir(), 'outpost.db');
    const db = new Database(path);
    migrate(db, MIGRATIONS.filter((migration) => migration.version <= 13));
    const insert = db.prepare("INSERT INTO queue_messages (id, queue, body, visible_at, receipt, sent_at) VALUES (?, 'scan', 'b', 0, ?, 0)");
    insert.run('waiting', null);
    insert.run('in-flight', 'handle-1');
    const receiptIndex = () => (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'queue_messages_receipt'").get() as { sql: string } | undefined)?.sql;
    const before = receiptIndex();
    const fourteen = MIGRATIONS.find((migration) => migration.version === 14)!;
    const failing: Migration = {
      ...fourteen,
      up: (handle) => {
        fourteen.up(handle);
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      },
    };
    expect(() => migrate(db, [...MIGRATIONS.filter((migration) => migration.version <= 13), failing])).toThrow(/disk is full/);
    // Nothing of it stayed: the version, the former index and the rows are those of before.
    expect(schemaVersion(db)).toBe(13);
    expect(receiptIndex()).toBe(before);
    expect(db.prepare('SELECT id, receipt FROM queue_messages ORDER BY id').all()).toEqual([
      { id: 'in-flight', receipt: 'handle-1' },
      { id: 'waiting', receipt: null },
    ]);
    // The next start applies it.
    expect(migrate(db).map((migration) => migration.version)).toEqual([14]);
    expect(receiptIndex()).toMatch(/WHERE receipt IS NOT NULL/);
    expect(() => insert.run('another', 'handle-1')).toThrow(/UNIQUE constraint failed/);
    db.close();
  });

  it('refuses a database written by a newer release', () => {
    const path = join(tempDir(), 'outpost.db');
    const db = openDatabase(path);
    db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openDatabase(path)).toThrow(SchemaTooNewError);
  });
});
