import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteBatvKeyStore } from '../../../adapters/local/batv-key-store.js';
import { secretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { batvTag, batvValidate } from '../../../core/batv.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12);
const box = secretBoxFromKey(Buffer.alloc(32, 5));

describe('SqliteBatvKeyStore', () => {
  it('generates a key on first use and returns the same one afterwards', async () => {
    const store = new SqliteBatvKeyStore(openDatabase(':memory:'), box);
    const first = await store.current(T0);
    const again = await store.current(T0 + DAY);
    expect(again.index).toBe(first.index);
    expect(again.secret.equals(first.secret)).toBe(true);
    expect(first.secret).toHaveLength(32);
  });

  it('stores secrets sealed', async () => {
    const db = openDatabase(':memory:');
    const store = new SqliteBatvKeyStore(db, box);
    const key = await store.current(T0);
    const row = db.prepare('SELECT sealed_secret FROM batv_keys').get() as { sealed_secret: string };
    expect(row.sealed_secret.includes(key.secret.toString('base64'))).toBe(false);
    expect(box.open(row.sealed_secret).equals(key.secret)).toBe(true);
  });

  it('after rotation, tags of the retired key validate during the grace period and not after', async () => {
    const store = new SqliteBatvKeyStore(openDatabase(':memory:'), box);
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
});
