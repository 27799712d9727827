// The pooled random bytes behind the ids made for every message: each call gets bytes of its own,
// which no later call overwrites, also across the pool's replacement.
import { describe, expect, it } from 'vitest';
import { pooledRandomBytes } from '../../core/random-pool.js';

describe('pooledRandomBytes', () => {
  it('gives each call bytes of its own, and keeps them when the pool is spent and replaced', () => {
    const first = pooledRandomBytes(10);
    const kept = Buffer.from(first);
    // Well past one pool of 4 KiB: the pool is replaced several times.
    const taken = Array.from({ length: 2_000 }, () => pooledRandomBytes(10).toString('hex'));
    expect(first.equals(kept)).toBe(true);
    expect(new Set(taken).size).toBe(taken.length);
  });

  it('answers a request longer than the pool', () => {
    const large = pooledRandomBytes(10_000);
    expect(large).toHaveLength(10_000);
    expect(new Set(large).size).toBeGreaterThan(200);
  });
});
