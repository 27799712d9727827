// The single node's BlobStore on a real SQLite database and folder: it keeps the BlobStore
// contract for what is put through it (files), and serves the bodies the acceptance batch
// committed inline to every reader: get, exists, delete, list.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { LocalBlobStore, SqliteMessageBodies } from '../../../adapters/local/message-body-store.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import { blobStoreContract } from '../../core/blob-store.contract.js';

function openStore(): { dir: string; db: Db; bodies: SqliteMessageBodies; store: LocalBlobStore; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bodies-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  const bodies = new SqliteMessageBodies(db);
  const store = new LocalBlobStore(new FsBlobStore(join(dir, 'blobs')), bodies);
  return { dir, db, bodies, store, close: () => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  } };
}

blobStoreContract('filesystem and message_bodies', openStore);

describe('LocalBlobStore: bodies committed inline', () => {
  let fixture: ReturnType<typeof openStore>;
  beforeEach(() => {
    fixture = openStore();
  });
  afterEach(() => fixture.close());

  const body = Buffer.from('Received: from x\r\nFrom: a@acme.test\r\n\r\nbinary \x01\xff\r\n', 'latin1');

  it('serves an inline body by its key, with no file behind it', async () => {
    fixture.bodies.insertNow('messages/2026-12-02/M1.eml', body, 1000);
    expect((await fixture.store.get('messages/2026-12-02/M1.eml')).equals(body)).toBe(true);
    expect(await fixture.store.exists('messages/2026-12-02/M1.eml')).toBe(true);
    expect(existsSync(join(fixture.dir, 'blobs', 'messages'))).toBe(false);
  });

  it('deletes the row, idempotently', async () => {
    fixture.bodies.insertNow('messages/2026-12-02/M2.eml', body, 1000);
    await fixture.store.delete('messages/2026-12-02/M2.eml');
    await fixture.store.delete('messages/2026-12-02/M2.eml');
    expect(await fixture.store.exists('messages/2026-12-02/M2.eml')).toBe(false);
    expect(fixture.db.prepare('SELECT COUNT(*) AS n FROM message_bodies').get()).toEqual({ n: 0 });
    await expect(fixture.store.get('messages/2026-12-02/M2.eml')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('deletes a file put under a key that was inline, and an inline body without looking for a file', async () => {
    fixture.bodies.insertNow('messages/2026-12-02/M6.eml', body, 1000);
    await fixture.store.put('messages/2026-12-02/M6.eml', Buffer.from('From: newer\r\n\r\n'));
    await fixture.store.delete('messages/2026-12-02/M6.eml');
    expect(await fixture.store.exists('messages/2026-12-02/M6.eml')).toBe(false);
    expect(existsSync(join(fixture.dir, 'blobs', 'messages', '2026-12-02', 'M6.eml'))).toBe(false);
    // An inline body is the key's only copy (a file put under it removes it): deleting it ends
    // there. A file planted beside it, which the store never makes, shows that nothing was looked for.
    fixture.bodies.insertNow('messages/2026-12-02/M7.eml', body, 1000);
    const planted = join(fixture.dir, 'blobs', 'messages', '2026-12-02', 'M7.eml');
    writeFileSync(planted, body);
    await fixture.store.delete('messages/2026-12-02/M7.eml');
    expect(fixture.db.prepare('SELECT COUNT(*) AS n FROM message_bodies').get()).toEqual({ n: 0 });
    expect(existsSync(planted)).toBe(true);
  });

  it('lists inline bodies and files under a prefix, with when they were stored', async () => {
    fixture.bodies.insertNow('messages/2026-12-02/M3.eml', body, 1234);
    fixture.bodies.insertNow('messages_x/M4.eml', body, 1);
    await fixture.store.put('messages/2026-12-02/F1.eml', body);
    const listed = await fixture.store.list('messages/');
    expect(listed.map((blob) => blob.key).sort()).toEqual(['messages/2026-12-02/F1.eml', 'messages/2026-12-02/M3.eml']);
    expect(listed.find((blob) => blob.key.endsWith('M3.eml'))?.modifiedAt).toBe(1234);
  });

  it('reads what was put later under an inline key', async () => {
    fixture.bodies.insertNow('messages/2026-12-02/M5.eml', body, 1000);
    await fixture.store.put('messages/2026-12-02/M5.eml', Buffer.from('From: newer\r\n\r\n'));
    expect((await fixture.store.get('messages/2026-12-02/M5.eml')).toString()).toBe('From: newer\r\n\r\n');
  });
});
