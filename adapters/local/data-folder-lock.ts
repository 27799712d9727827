// One relay per data folder. The relay's thread keeps the rate limits in memory
// (relay-counters.ts), so two relays on one folder would each count only their own sessions and
// let a sender through twice its limits. `outpost start` therefore takes the folder: the file
// relay.pid holds the process id of the relay that runs on it, and a second start refuses while
// that process lives. A file left by a relay that died (SIGKILL, power loss) names a process that
// no longer runs, and the next start takes it over. The CLI works beside a running relay as before.
import { linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRIVATE_FILE_MODE } from './private-files.js';

export const LOCK_FILE = 'relay.pid';

export interface DataFolderLock {
  /** Gives the folder back (the file goes, if it is still this process's). */
  release(): void;
}

export class DataFolderInUse extends Error {
  constructor(
    readonly pid: number,
    readonly path: string,
  ) {
    super(`another Outpost relay (process ${pid}) runs on this data folder; stop it first, or delete ${path} if no such process is a relay`);
    this.name = 'DataFolderInUse';
  }
}

/** Takes `dataDir` for this process; throws DataFolderInUse while another live process holds it. */
export function lockDataFolder(dataDir: string): DataFolderLock {
  const path = join(dataDir, LOCK_FILE);
  const mine = String(process.pid);
  if (!createExclusively(path, mine)) {
    const holder = holderOf(path);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) throw new DataFolderInUse(holder, path);
    // Left by a relay that is gone (or by this process, started again): taken over, again with an
    // exclusive create, so that of two starts that found it gone together only one goes on.
    rmSync(path, { force: true });
    if (!createExclusively(path, mine)) {
      throw new DataFolderInUse(holderOf(path), path);
    }
  }
  return {
    release: () => {
      try {
        if (readFileSync(path, 'utf8').trim() === mine) unlinkSync(path);
      } catch {
        // Already gone: nothing to give back.
      }
    },
  };
}

/**
 * Creates `path` holding `content`, whole, or returns false if it exists: the content goes into a
 * file of this process's own first, then a hard link puts it in place (atomic, and never seen
 * empty by another start reading it).
 */
function createExclusively(path: string, content: string): boolean {
  const own = `${path}.${process.pid}`;
  writeFileSync(own, content, { mode: PRIVATE_FILE_MODE });
  try {
    linkSync(own, path);
    return true;
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(own, { force: true });
  }
}

/** The process id in the file; NaN when it is gone or holds none. */
function holderOf(path: string): number {
  try {
    return Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Number.NaN;
    throw error;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
