import { describe, expect, it } from 'vitest';
import { pemBase64Lines } from '../../helpers/pem.js';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteDkimKeyStore } from '../../../adapters/local/dkim-key-store.js';
import { localSecretBox, localSecretBoxFromKey, openLocalSecretBox } from '../../../adapters/local/secret-box.js';
import { addDkimKey, publicKeyOf, rotateDkimKey } from '../../../core/dkim/keys.js';

const clock = { now: () => Date.UTC(2026, 10, 25, 12) };

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-dkim-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  const store = new SqliteDkimKeyStore(db, localSecretBox(dir), clock);
  return { dir, db, box: openLocalSecretBox(dir), store };
}

describe('SqliteDkimKeyStore', () => {
  it('lists public data only and keeps private keys sealed at rest', async () => {
    const { store, db, dir } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 's1', now: clock.now() });
    const listed = await store.list();
    expect(JSON.stringify(listed)).not.toMatch(/PRIVATE KEY/);
    expect(listed[0]?.dns.zoneLine).toMatch(/^s1\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=rsa; p=/);
    const row = db.prepare('SELECT sealed_private_key FROM dkim_keys').get() as { sealed_private_key: string };
    expect(row.sealed_private_key).not.toMatch(/PRIVATE KEY/);
    // Not one line of the key's base64 is in the row.
    const keyLines = pemBase64Lines((await store.signingKey('example.com'))?.privateKeyPem ?? '');
    expect(keyLines.length).toBeGreaterThan(10);
    for (const line of keyLines) expect(row.sealed_private_key).not.toContain(line);
    db.close();
    expect(readFileSync(join(dir, 'outpost.db')).includes('PRIVATE KEY')).toBe(false);
  });

  it('cannot open the keys with another key file', async () => {
    const { store, db } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 's1', now: clock.now() });
    const other = new SqliteDkimKeyStore(db, localSecretBoxFromKey(Buffer.alloc(32, 1)), clock);
    await expect(other.signingKey('example.com')).rejects.toThrow(/wrong key file/);
  });

  it('creates the key file with mode 0600 and reuses it', () => {
    const { dir, box } = setup();
    const path = join(dir, 'secret-box.key');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBe(32);
    const sealed = box.seal(Buffer.from('secret'));
    expect(openLocalSecretBox(dir).open(sealed).toString()).toBe('secret');
  });
});
