// A consistent copy of a single node's data folder, taken while the relay runs. The database is
// copied with SQLite's online backup (a snapshot of one committed state, taken page by page
// without stopping writers). Message files are immutable once in place (written to a temporary
// name, then renamed), so copying them is safe; they are copied before and after the snapshot:
// every file a queue row of the snapshot names existed at one of the two passes, unless its
// message finished (and its file was deleted) in between, which the summary counts. Small
// messages have no file: their bodies are in the database (message_bodies), hence in the snapshot.
// Everything else in the folder is small and copied as is: the secret key file (without it the
// DKIM and BATV keys in the database cannot be opened), the operator token, the TLS material.
import { chmod, copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import type { Db } from './sqlite.js';
import { schemaVersion } from './migrations.js';

export const DATABASE_FILE = 'outpost.db';
const BLOB_DIR = 'blobs';

export interface BackupSummary {
  destination: string;
  schemaVersion: number;
  messageFiles: number;
  otherFiles: string[];
  /** Queue entries (pipeline queues, not dead-letter) in the snapshot. */
  queued: number;
  /** Queue entries of the snapshot whose message file was gone by the second pass (finished meanwhile). */
  missingFiles: number;
}

export class BackupError extends Error {
  override name = 'BackupError';
}

/** Files of a folder, recursively, as paths relative to it; temporary files of writes in progress left out. */
async function filesUnder(root: string, dir: string = root): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error: unknown) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return [];
    throw error;
  }
  const found: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(root, path)));
    else if (entry.isFile() && !entry.name.startsWith('.tmp-')) found.push(relative(root, path));
  }
  return found;
}

async function copyInto(from: string, to: string, file: string): Promise<boolean> {
  await mkdir(join(to, file, '..'), { recursive: true, mode: 0o700 });
  try {
    await copyFile(join(from, file), join(to, file));
    return true;
  } catch (error: unknown) {
    // Deleted since it was listed: its message finished delivery.
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return false;
    throw error;
  }
}

async function copyMessageFiles(dataDir: string, destination: string, done: Set<string>): Promise<void> {
  const from = join(dataDir, BLOB_DIR);
  const to = join(destination, BLOB_DIR);
  for (const file of await filesUnder(from)) {
    if (done.has(file)) continue;
    if (await copyInto(from, to, file)) done.add(file);
  }
}

/** Copies `dataDir` (whose database `db` is open) to `destination`, which must not exist or be empty. */
export async function backupDataFolder(dataDir: string, db: Db, destination: string): Promise<BackupSummary> {
  const existing = await readdir(destination).catch(() => []);
  if (existing.length > 0) throw new BackupError(`${destination} is not empty; back up into a new folder`);
  // It holds the secret key file and the operator token: owner only.
  await mkdir(destination, { recursive: true, mode: 0o700 });
  await chmod(destination, 0o700);

  const copied = new Set<string>();
  await copyMessageFiles(dataDir, destination, copied);
  await db.backup(join(destination, DATABASE_FILE));
  await copyMessageFiles(dataDir, destination, copied);

  const otherFiles: string[] = [];
  for (const file of await filesUnder(dataDir)) {
    if (file.startsWith(BLOB_DIR + '/') || file.startsWith(DATABASE_FILE)) continue;
    if (await copyInto(dataDir, destination, file)) {
      otherFiles.push(file);
      await chmod(join(destination, file), (await stat(join(dataDir, file))).mode & 0o777);
    }
  }

  const snapshot = new Database(join(destination, DATABASE_FILE), { readonly: true });
  try {
    // The copy is checked before it is called a backup.
    const integrity: unknown = snapshot.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new BackupError(`the database copy in ${destination} fails its integrity check (${String(integrity)}); do not rely on it`);
    const rows = snapshot.prepare("SELECT body FROM queue_messages WHERE queue NOT LIKE '%-dlq'").all() as Array<{ body: string }>;
    const inline = snapshot.prepare('SELECT 1 FROM message_bodies WHERE key = ?');
    let missingFiles = 0;
    for (const row of rows) {
      const blobKey = blobKeyOf(row.body);
      if (blobKey && !copied.has(blobKey) && inline.get(blobKey) === undefined) missingFiles += 1;
    }
    return { destination, schemaVersion: schemaVersion(snapshot), messageFiles: copied.size, otherFiles: otherFiles.sort(), queued: rows.length, missingFiles };
  } finally {
    snapshot.close();
  }
}

/** The message file a queue body names (scan and bounce bodies are envelopes; deliver bodies wrap one). */
export function blobKeyOf(body: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const envelope = isRecord(json) && isRecord(json.envelope) ? json.envelope : json;
  return isRecord(envelope) && typeof envelope.blobKey === 'string' ? envelope.blobKey : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
