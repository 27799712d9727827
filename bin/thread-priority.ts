// Lowers the scheduling priority of the calling thread alone (Linux): the pipeline's worker thread
// yields the CPU to the SMTP sessions under load. Linux keeps a niceness per thread, and
// setpriority() given a thread id changes only that thread; /proc/thread-self names the calling
// thread's id. Raising niceness needs no privilege.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Sets the calling thread's niceness; returns its thread id, or an error text where it cannot (not Linux). */
export function niceThisThread(nice: number): { threadId: number } | { error: string } {
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(threadId) || threadId <= 0) return { error: 'no thread id in /proc/thread-self' };
    setPriority(threadId, nice);
    return { threadId };
  } catch (error: unknown) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}
