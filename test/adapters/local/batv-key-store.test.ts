import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteBatvKeyStore } from '../../../adapters/local/batv-key-store.js';
import { localSecretBoxFromKey, secretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { batvTag, batvValidate } from '../../../core/batv.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12);
const box = secretBoxFromKey(Buffer.alloc(32, 5));
const asyncBox = localSecretBoxFromKey(Buffer.alloc(32, 5));

describe('SqliteBatvKeyStore', () => {
  it('stores secrets sealed', async () => {
    const db = openDatabase(':memory:');
    const store = new SqliteBatvKeyStore(db, asyncBox);
    const key = await store.current(T0);
    const row = db.prepare('SELECT sealed_secret FROM batv_keys').get() as { sealed_secret: string };
    expect(row.sealed_secret.includes(key.secret.toString('base64'))).toBe(false);
    expect(box.open(row.sealed_secret).equals(key.secret)).toBe(true);
  });

});
