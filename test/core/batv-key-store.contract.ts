// The contract every BatvKeyStore backend keeps (SQLite, DynamoDB): a key made on first use and
// kept, rotation, and retired keys valid through their grace period only.
// Call `batvKeyStoreContract(name, open)` from a backend's test file.
import { describe, expect, it } from 'vitest';
import { batvTag, batvValidate, type BatvKeyStore } from '../../core/batv.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12);

export function batvKeyStoreContract(backend: string, open: () => Promise<BatvKeyStore>): void {
  describe(`BatvKeyStore contract: ${backend}`, () => {
  it('generates a key on first use and returns the same one afterwards', async () => {
    const store = await open();
    const first = await store.current(T0);
    const again = await store.current(T0 + DAY);
    expect(again.index).toBe(first.index);
    expect(again.secret.equals(first.secret)).toBe(true);
    expect(first.secret).toHaveLength(32);
  });

  it('after rotation, tags of the retired key validate during the grace period and not after', async () => {
    const store = await open();
    const old = await store.current(T0);
    const oldTag = batvTag('ann@example.com', old, T0);
    const fresh = await store.rotate(T0 + DAY);
    expect(fresh.index).not.toBe(old.index);
    expect((await store.current(T0 + DAY)).index).toBe(fresh.index);
    expect(batvValidate(oldTag, await store.keys(T0 + 2 * DAY), T0 + 2 * DAY).reason).toBe('valid');
    // Grace is 7 days from retirement: at day 9 the old key is gone (and its tag expired too).
    expect(batvValidate(oldTag, await store.keys(T0 + 9 * DAY), T0 + 9 * DAY).reason).toBe('unknown-key');
    const freshTag = batvTag('ann@example.com', fresh, T0 + DAY);
    expect(batvValidate(freshTag, await store.keys(T0 + 2 * DAY), T0 + 2 * DAY).reason).toBe('valid');
  });

    it('makes exactly one current key when first used concurrently', async () => {
      const store = await open();
      const keys = await Promise.all(Array.from({ length: 5 }, () => store.current(T0)));
      expect(new Set(keys.map((key) => key.index)).size).toBe(1);
      expect(new Set(keys.map((key) => key.secret.toString('hex'))).size).toBe(1);
      expect(await store.keys(T0)).toHaveLength(1);
    });
  });
}
