// The single node's data folder holds mail, credentials and keys: only the user running the
// relay may read it. Folders are 0700 and files 0600 whatever the umask, and an existing
// installation made with looser modes (0755 folders, 0644 files) is tightened on start.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `path` (and missing parents) as 0700, and tightens `path` itself if it already existed.
 * A sticky folder (such as /tmp) is shared by design and is never a data folder: it is left as is.
 */
export function ensurePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  if ((statSync(path).mode & 0o1000) !== 0) return;
  tighten(path, PRIVATE_DIR_MODE);
}

/** Creates `path` empty as 0600 when it does not exist; tightens it when it does. */
export function ensurePrivateFile(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
  tighten(path, PRIVATE_FILE_MODE);
}

/** Tightens an existing file or folder to `mode` when group or others have any access. */
export function tighten(path: string, mode: number): void {
  if (!existsSync(path)) return;
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, mode);
}
