// A full disk or quota, whichever store reports it: the filesystem (message files) or SQLite; or
// the relay's memory for distinct recipients at its budget (adapters/local/memory-counter-store.ts).
// Such a failure is "mail system full" (RFC 3463 X.3.1, reply 452): the client keeps the message
// and retries, as it would after any temporary failure, but the operator reads the real cause.
export const COUNTER_MEMORY_FULL = 'OUTPOST_COUNTER_MEMORY_FULL';
const STORAGE_FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', COUNTER_MEMORY_FULL]);

export function isStorageFull(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' && STORAGE_FULL_CODES.has(error.code);
}
