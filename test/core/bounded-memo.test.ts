// The bounded memo that the prepared statements, the parsed DKIM keys and the fingerprint's word
// hashes share: one computation per key, at most `max` values kept, nothing kept for a failure.
import { describe, expect, it } from 'vitest';
import { BoundedMemo } from '../../core/bounded-memo.js';

describe('BoundedMemo', () => {
  it('computes a key once and gives the kept value after', () => {
    const computed: string[] = [];
    const memo = new BoundedMemo(10, (key) => {
      computed.push(key);
      return { key };
    });
    const first = memo.get('a');
    expect(memo.get('a')).toBe(first);
    memo.get('b');
    expect(computed).toEqual(['a', 'b']);
    expect(memo.size).toBe(2);
  });

  it('keeps at most max values, forgetting all of them when full', () => {
    const computed: string[] = [];
    const memo = new BoundedMemo(3, (key) => {
      computed.push(key);
      return key.length;
    });
    for (const key of ['a', 'bb', 'ccc', 'dddd']) memo.get(key);
    expect(memo.size).toBe(1);
    memo.get('a');
    expect(computed).toEqual(['a', 'bb', 'ccc', 'dddd', 'a']);
    for (let n = 0; n < 100; n += 1) memo.get(`key ${n}`);
    expect(memo.size).toBeLessThanOrEqual(3);
  });

  it('keeps nothing for a computation that throws: the next call computes again', () => {
    let calls = 0;
    const memo = new BoundedMemo(10, (key) => {
      calls += 1;
      if (calls === 1) throw new Error(`cannot compute ${key}`);
      return 42;
    });
    expect(() => memo.get('x')).toThrow('cannot compute x');
    expect(memo.size).toBe(0);
    expect(memo.get('x')).toBe(42);
    expect(calls).toBe(2);
  });
});
