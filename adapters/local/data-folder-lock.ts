// One relay per data folder. The relay's thread keeps the rate limits in memory
// (relay-counters.ts), so two relays on one folder would each count only their own sessions and
// let a sender through twice its limits. `outpost start` therefore takes the folder: the file
// relay.pid holds the process id of the relay that runs on it, and a second start refuses while
// that process lives. A file left by a relay that died (SIGKILL, power loss) names a process that
// no longer runs, and the next start takes it over. The CLI works beside a running relay as before.
import { openSync, readFileSync, unlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
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
  try {
    const fd = openSync(path, 'wx', PRIVATE_FILE_MODE);
    try {
      writeSync(fd, mine);
    } finally {
      closeSync(fd);
    }
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) throw new DataFolderInUse(holder, path);
    // Left by a relay that is gone (or by this process, started again): taken over.
    writeFileSync(path, mine, { mode: PRIVATE_FILE_MODE });
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

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
