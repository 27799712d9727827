// Message blobs: S3 on AWS (adapters/aws/s3-blob-store.ts), the filesystem on the single node
// (adapters/local/fs-blob-store.ts). Contract: test/core/blob-store.contract.ts.
//
// Promises every implementation keeps:
// - `put`/`putStream` resolve only once the bytes are durable: the ingress answers 250 after them;
// - `get` gives back exactly the bytes stored (binary included), the last ones put under the key;
// - a stream whose source fails leaves no blob behind (no half message is ever delivered);
// - `delete` is idempotent, and a key that climbs out of the store (`../`) is refused.
import type { Readable } from 'node:stream';

export interface BlobStore {
  put(key: string, data: Buffer): Promise<void>;
  /** Streams `source` into `key`; resolves with the byte count once durable. */
  putStream(key: string, source: Readable): Promise<number>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
}
