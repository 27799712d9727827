// The single node's message store: small accepted messages live in the database, the rest in
// files. A file costs an fsync of its own plus one of its folder before the 250; a body in the
// table `message_bodies` is written by the group commit that queues the message
// (acceptance-batch.ts): one fsync for every message of the batch, and the body and its queue
// entry are durable together or not at all. Readers do not know where a body lives: every key
// is looked up in both places, so the pipeline, quarantine, held mail and housekeeping work on
// the one BlobStore port as on S3.
import type { Readable } from 'node:stream';
import type { BlobListing, StoredBlob } from '../../core/bounce/housekeeping.js';
import type { BlobStore } from '../../core/ports.js';
import type { FsBlobStore } from './fs-blob-store.js';
import { writesOf, type Db } from './sqlite.js';

/** The table `message_bodies` on one connection. */
export class SqliteMessageBodies {
  constructor(private readonly db: Db) {}

  /** Inside the caller's transaction (the acceptance batch's group commit). */
  insertNow(key: string, body: Buffer, storedAt: number): void {
    this.db.prepare('INSERT INTO message_bodies (key, body, stored_at) VALUES (?, ?, ?)').run(key, body, storedAt);
  }

  get(key: string): Buffer | undefined {
    const row = this.db.prepare('SELECT body FROM message_bodies WHERE key = ?').get(key) as { body: Buffer } | undefined;
    return row?.body;
  }

  has(key: string): boolean {
    return this.db.prepare('SELECT 1 FROM message_bodies WHERE key = ?').get(key) !== undefined;
  }

  /** Whether there was a body under `key`. */
  delete(key: string): boolean {
    return this.db.prepare('DELETE FROM message_bodies WHERE key = ?').run(key).changes > 0;
  }

  /** delete(), committed with the connection's other writes of this turn of the event loop (sqlite.ts TurnWrites). */
  deleteInTurn(key: string): Promise<boolean> {
    return writesOf(this.db).run(() => this.delete(key));
  }

  /** Keys under `prefix`, with when they were stored. */
  list(prefix: string): StoredBlob[] {
    const pattern = prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + '%';
    const rows = this.db.prepare("SELECT key, stored_at FROM message_bodies WHERE key LIKE ? ESCAPE '\\'").all(pattern) as Array<{ key: string; stored_at: number }>;
    return rows.map((row) => ({ key: row.key, modifiedAt: row.stored_at }));
  }
}

/**
 * The single node's BlobStore: writes go to files (notices, reports, bounces, large messages);
 * reads, deletes and listings see the files and the bodies the ingress committed inline.
 */
export class LocalBlobStore implements BlobStore, BlobListing {
  constructor(
    private readonly files: FsBlobStore,
    private readonly bodies: SqliteMessageBodies,
  ) {}

  async put(key: string, data: Buffer): Promise<void> {
    await this.files.put(key, data);
    this.supersede(key);
  }

  async putStream(key: string, source: Readable): Promise<number> {
    const bytes = await this.files.putStream(key, source);
    this.supersede(key);
    return bytes;
  }

  async get(key: string): Promise<Buffer> {
    // The table first: most messages are there, and a miss costs no failed open().
    return this.bodies.get(key) ?? this.files.get(key);
  }

  async exists(key: string): Promise<boolean> {
    return this.bodies.has(key) || (await this.files.exists(key));
  }

  async delete(key: string): Promise<void> {
    // A key is either an inline body or a file, never both (a file written under a key removes
    // its inline body: supersede): when the body was there, there is no file to look for.
    if (await this.bodies.deleteInTurn(key)) return;
    await this.files.delete(key);
  }

  async list(prefix: string): Promise<StoredBlob[]> {
    return [...this.bodies.list(prefix), ...(await this.files.list(prefix))];
  }

  /** A file now holds the key's last bytes: an inline body under it (the ingress never writes one twice) must not shadow them. */
  private supersede(key: string): void {
    if (this.bodies.has(key)) this.bodies.delete(key);
  }
}
