// Message blobs on the filesystem. A blob is written to a temporary file, fsynced, renamed into
// place and its directory fsynced: once put* resolves, the blob survives a power cut.
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { ensurePrivateDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './private-files.js';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobListing, StoredBlob } from '../../core/bounce/housekeeping.js';
import type { BlobStore } from '../../core/ports.js';

/**
 * fsyncs of a folder, shared: every rename that asks before a folder's fsync starts is made
 * durable by that one fsync (many messages landing in the day's folder at once need one fsync,
 * not one each). A rename that asks while an fsync is running waits for the next one.
 */
class FolderSync {
  private readonly next = new Map<string, Promise<void>>();

  sync(dir: string): Promise<void> {
    let pending = this.next.get(dir);
    if (!pending) {
      pending = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        // From here on, a new request needs a new fsync.
        this.next.delete(dir);
        return fsyncFolder(dir);
      });
      this.next.set(dir, pending);
    }
    return pending;
  }
}

async function fsyncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class FsBlobStore implements BlobStore, BlobListing {
  private readonly folders = new FolderSync();

  constructor(private readonly root: string) {
    ensurePrivateDir(root);
  }

  private pathOf(key: string): string {
    if (!/^[A-Za-z0-9._/-]+$/.test(key) || key.includes('..')) throw new Error(`invalid blob key "${key}"`);
    const full = resolve(this.root, key);
    if (!full.startsWith(resolve(this.root) + sep)) throw new Error(`invalid blob key "${key}"`);
    return full;
  }

  async put(key: string, data: Buffer): Promise<void> {
    const path = this.pathOf(key);
    const temp = await this.tempFor(path);
    const handle = await open(temp, 'w', PRIVATE_FILE_MODE);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.commit(temp, path);
  }

  async putStream(key: string, source: Readable): Promise<number> {
    const path = this.pathOf(key);
    const temp = await this.tempFor(path);
    let bytes = 0;
    source.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    try {
      await pipeline(source, createWriteStream(temp, { mode: PRIVATE_FILE_MODE }));
      const handle = await open(temp, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error: unknown) {
      await rm(temp, { force: true });
      throw error;
    }
    await this.commit(temp, path);
    return bytes;
  }

  async get(key: string): Promise<Buffer> {
    return readFile(this.pathOf(key));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.pathOf(key));
      return true;
    } catch {
      return false;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  /** Every file under `prefix` (a folder), temporary files of unfinished writes included. */
  async list(prefix: string): Promise<StoredBlob[]> {
    const root = resolve(this.root);
    let entries;
    try {
      entries = await readdir(this.pathOf(prefix.replace(/\/+$/, '')), { recursive: true, withFileTypes: true });
    } catch (error: unknown) {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return [];
      throw error;
    }
    const found: StoredBlob[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      const info = await stat(full).catch(() => undefined);
      if (info) found.push({ key: relative(root, full).split(sep).join('/'), modifiedAt: info.mtimeMs });
    }
    return found;
  }

  private async tempFor(path: string): Promise<string> {
    // Messages are private mail: folders 0700, files 0600 (see private-files.ts).
    await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
    return join(dirname(path), `.tmp-${randomUUID()}`);
  }

  private async commit(temp: string, path: string): Promise<void> {
    await rename(temp, path);
    await this.folders.sync(dirname(path));
  }
}
