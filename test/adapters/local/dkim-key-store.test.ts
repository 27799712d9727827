import { describe, expect, it } from 'vitest';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteDkimKeyStore } from '../../../adapters/local/dkim-key-store.js';
import { openLocalSecretBox, secretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { addDkimKey, publicKeyOf, rotateDkimKey } from '../../../core/dkim/keys.js';

const clock = { now: () => Date.UTC(2026, 10, 25, 12) };

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-dkim-'));
  const db = openDatabase(join(dir, 'outpost.db'));
  const box = openLocalSecretBox(dir);
  return { dir, db, box, store: new SqliteDkimKeyStore(db, box, clock) };
}

describe('SqliteDkimKeyStore', () => {
  it('makes the first key of a domain its default and signs with it', async () => {
    const { store } = setup();
    const key = await addDkimKey(store, { domain: 'Example.COM', now: clock.now() });
    expect(key).toMatchObject({ domain: 'example.com', selector: 'o20261125', algorithm: 'rsa', isDefault: true });
    const signing = await store.signingKey('example.com');
    expect(signing?.selector).toBe('o20261125');
    expect(publicKeyOf(signing?.privateKeyPem ?? '', 'rsa')).toBe(key.publicKey);
  });

  it('keeps several selectors; a named selector signs, the default otherwise', async () => {
    const { store } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 'rsa1', now: clock.now() });
    const ed = await addDkimKey(store, { domain: 'example.com', selector: 'ed1', algorithm: 'ed25519', now: clock.now() });
    expect(ed.isDefault).toBe(false);
    expect((await store.signingKey('example.com'))?.selector).toBe('rsa1');
    expect((await store.signingKey('example.com', 'ed1'))?.algorithm).toBe('ed25519');
    expect(await store.signingKey('example.com', 'nope')).toBeUndefined();
    expect(await store.signingKey('other.example')).toBeUndefined();
    await expect(addDkimKey(store, { domain: 'example.com', selector: 'rsa1', now: clock.now() })).rejects.toThrow(/already has a key/);
  });

  it('rotation makes a new default selector and leaves the old one usable until removed', async () => {
    const { store } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 'old', now: clock.now() });
    const fresh = await rotateDkimKey(store, { domain: 'example.com', now: clock.now() + 1000 });
    expect(fresh.isDefault).toBe(true);
    expect((await store.signingKey('example.com'))?.selector).toBe(fresh.selector);
    expect((await store.signingKey('example.com', 'old'))?.selector).toBe('old');
    await store.remove('example.com', 'old');
    expect(await store.signingKey('example.com', 'old')).toBeUndefined();
    await expect(store.remove('example.com', 'old')).rejects.toThrow(/no DKIM key/);
  });

  it('removing the default hands the role to the newest remaining key', async () => {
    const { store } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 'a', now: clock.now() });
    await addDkimKey(store, { domain: 'example.com', selector: 'b', now: clock.now() });
    await store.remove('example.com', 'a');
    expect((await store.list('example.com')).map((key) => [key.selector, key.isDefault])).toEqual([['b', true]]);
  });

  it('lists public data only and keeps private keys sealed at rest', async () => {
    const { store, db, dir } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 's1', now: clock.now() });
    const listed = await store.list();
    expect(JSON.stringify(listed)).not.toMatch(/PRIVATE KEY/);
    expect(listed[0]?.dns.zoneLine).toMatch(/^s1\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=rsa; p=/);
    const row = db.prepare('SELECT sealed_private_key FROM dkim_keys').get() as { sealed_private_key: string };
    expect(row.sealed_private_key).not.toMatch(/PRIVATE KEY|MII/);
    db.close();
    expect(readFileSync(join(dir, 'outpost.db')).includes('PRIVATE KEY')).toBe(false);
  });

  it('cannot open the keys with another key file', async () => {
    const { store, db } = setup();
    await addDkimKey(store, { domain: 'example.com', selector: 's1', now: clock.now() });
    const other = new SqliteDkimKeyStore(db, secretBoxFromKey(Buffer.alloc(32, 1)), clock);
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
