// The contract every BlobStore backend keeps (filesystem, S3): bytes come back exactly as put,
// from a buffer or a stream (the byte count is the stream's), `exists` tells the truth, and
// delete is idempotent. Call `blobStoreContract(name, open)` from a backend's test file.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../core/ports.js';

export interface BlobStoreFixture {
  store: BlobStore;
  close(): Promise<void> | void;
}

export function blobStoreContract(backend: string, open: () => Promise<BlobStoreFixture> | BlobStoreFixture): void {
  describe(`BlobStore contract: ${backend}`, () => {
    let fixture: BlobStoreFixture | undefined;
    const setup = async (): Promise<BlobStore> => (fixture = await open()).store;
    afterEach(async () => {
      await fixture?.close();
      fixture = undefined;
    });

    it('gives back exactly the bytes put, binary included', async () => {
      const store = await setup();
      const data = Buffer.concat([Buffer.from('From: a@b.example\r\n\r\nbody\r\n'), randomBytes(4096), Buffer.from([0, 13, 10, 46, 13, 10])]);
      await store.put('2026/11/25/m1.eml', data);
      expect((await store.get('2026/11/25/m1.eml')).equals(data)).toBe(true);
    });

    it('streams a multi-megabyte message in chunks and counts its bytes', async () => {
      const store = await setup();
      const chunks = Array.from({ length: 7 }, () => randomBytes(1024 * 1024));
      const whole = Buffer.concat(chunks);
      const bytes = await store.putStream('big/m2.eml', Readable.from(chunks));
      expect(bytes).toBe(whole.length);
      expect((await store.get('big/m2.eml')).equals(whole)).toBe(true);
    });

    it('streams an empty message', async () => {
      const store = await setup();
      expect(await store.putStream('empty.eml', Readable.from([]))).toBe(0);
      expect((await store.get('empty.eml')).length).toBe(0);
    });

    it('fails a stream whose source fails, and leaves no blob behind', async () => {
      const store = await setup();
      const source = new Readable({
        read() {
          this.push(Buffer.alloc(1024, 65));
          this.destroy(new Error('client went away'));
        },
      });
      await expect(store.putStream('broken.eml', source)).rejects.toThrow();
      expect(await store.exists('broken.eml')).toBe(false);
    });

    it('says whether a blob exists, and deletes idempotently', async () => {
      const store = await setup();
      expect(await store.exists('m3.eml')).toBe(false);
      await store.put('m3.eml', Buffer.from('x'));
      expect(await store.exists('m3.eml')).toBe(true);
      await store.delete('m3.eml');
      expect(await store.exists('m3.eml')).toBe(false);
      await store.delete('m3.eml');
      await expect(store.get('m3.eml')).rejects.toThrow();
    });

    it('overwrites a blob put again under the same key', async () => {
      const store = await setup();
      await store.put('m4.eml', Buffer.from('first'));
      await store.put('m4.eml', Buffer.from('second'));
      expect((await store.get('m4.eml')).toString()).toBe('second');
    });

    it('refuses a key that climbs out of the store', async () => {
      const store = await setup();
      await expect(store.put('../escape.eml', Buffer.from('x'))).rejects.toThrow(/invalid blob key/);
    });
  });
}
