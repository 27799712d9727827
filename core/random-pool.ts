// Random bytes for the ids made on hot paths (a queue id for every message, a queue entry and a
// receipt handle for every job): drawn from the CSPRNG 4 KiB at a time, one call into it for a few
// hundred ids instead of one each. Each thread has a pool of its own (a module instance each).
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

/** `length` fresh random bytes: a view of the pool that no later call overwrites (a spent pool is replaced, never refilled). */
export function pooledRandomBytes(length: number): Buffer {
  if (length > POOL_BYTES) return randomBytes(length);
  if (offset + length > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const bytes = pool.subarray(offset, offset + length);
  offset += length;
  return bytes;
}
