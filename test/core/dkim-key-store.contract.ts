// The contract every DkimKeyStore backend keeps (SQLite, DynamoDB): the first key of a domain is
// its default, named selectors sign, rotation and removal move the default, and private keys
// never appear in what `list` returns. Call `dkimKeyStoreContract(name, open)` from a backend's test.
import { describe, expect, it } from 'vitest';
import { addDkimKey, publicKeyOf, rotateDkimKey, type DkimKeyStore } from '../../core/dkim/keys.js';

const clock = { now: () => Date.UTC(2026, 10, 25, 12) };

export function dkimKeyStoreContract(backend: string, open: (clock: { now(): number }) => Promise<DkimKeyStore>): void {
  describe(`DkimKeyStore contract: ${backend}`, () => {
  it('makes the first key of a domain its default and signs with it', async () => {
    const store = await open(clock);
    const key = await addDkimKey(store, { domain: 'Example.COM', now: clock.now() });
    expect(key).toMatchObject({ domain: 'example.com', selector: 'o20261125', algorithm: 'rsa', isDefault: true });
    const signing = await store.signingKey('example.com');
    expect(signing?.selector).toBe('o20261125');
    expect(publicKeyOf(signing?.privateKeyPem ?? '', 'rsa')).toBe(key.publicKey);
  });

  it('keeps several selectors; a named selector signs, the default otherwise', async () => {
    const store = await open(clock);
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
    const store = await open(clock);
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
    const store = await open(clock);
    await addDkimKey(store, { domain: 'example.com', selector: 'a', now: clock.now() });
    await addDkimKey(store, { domain: 'example.com', selector: 'b', now: clock.now() });
    await store.remove('example.com', 'a');
    expect((await store.list('example.com')).map((key) => [key.selector, key.isDefault])).toEqual([['b', true]]);
  });

    it('lists public data only, every domain by name then age', async () => {
      const store = await open(clock);
      await addDkimKey(store, { domain: 'b.example', selector: 's1', now: clock.now() });
      await addDkimKey(store, { domain: 'a.example', selector: 's2', algorithm: 'ed25519', now: clock.now() });
      const listed = await store.list();
      expect(listed.map((key) => [key.domain, key.selector, key.isDefault])).toEqual([
        ['a.example', 's2', true],
        ['b.example', 's1', true],
      ]);
      expect(JSON.stringify(listed)).not.toMatch(/PRIVATE KEY/);
      expect(listed[1]?.dns.zoneLine).toMatch(/^s1\._domainkey\.b\.example\. IN TXT "v=DKIM1; k=rsa; p=/);
      await store.setDefault('b.example', 's1');
      await expect(store.setDefault('b.example', 'nope')).rejects.toThrow(/no DKIM key/);
    });
  });
}
