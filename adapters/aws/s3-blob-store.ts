// Message blobs in S3. A put resolves once S3 has answered, i.e. once the object is durable.
// Streams go through lib-storage's Upload (multipart above 5 MiB, so a 25 MB message never sits
// in memory whole); every object is encrypted with the deployment's KMS key when one is given.
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, type Readable } from 'node:stream';
import type { BlobStore } from '../../core/ports.js';

export interface S3BlobStoreOptions {
  client: S3Client;
  bucket: string;
  /** Prepended to every key, e.g. `messages/`. */
  prefix?: string;
  /** SSE-KMS with this key (id, ARN or alias); unset: the bucket's default encryption. */
  kmsKeyId?: string;
}

export class S3BlobStore implements BlobStore {
  constructor(private readonly options: S3BlobStoreOptions) {}

  private objectOf(key: string): { Bucket: string; Key: string } {
    if (key === '' || key.startsWith('/') || key.split('/').includes('..')) throw new Error(`invalid blob key "${key}"`);
    return { Bucket: this.options.bucket, Key: `${this.options.prefix ?? ''}${key}` };
  }

  private get encryption(): { ServerSideEncryption?: 'aws:kms'; SSEKMSKeyId?: string } {
    return this.options.kmsKeyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.options.kmsKeyId } : {};
  }

  async put(key: string, data: Buffer): Promise<void> {
    await this.options.client.send(new PutObjectCommand({ ...this.objectOf(key), Body: data, ContentLength: data.length, ...this.encryption }));
  }

  async putStream(key: string, source: Readable): Promise<number> {
    let bytes = 0;
    const counted = new PassThrough();
    counted.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    // An error of the source (e.g. the client went away mid-DATA) fails the upload, which then
    // aborts its multipart upload: no partial object is left.
    source.on('error', (error: Error) => counted.destroy(error));
    source.pipe(counted);
    const upload = new Upload({ client: this.options.client, params: { ...this.objectOf(key), Body: counted, ...this.encryption } });
    await upload.done();
    return bytes;
  }

  async get(key: string): Promise<Buffer> {
    const result = await this.options.client.send(new GetObjectCommand(this.objectOf(key)));
    if (!result.Body) throw new Error(`blob ${key} has no body`);
    return Buffer.from(await result.Body.transformToByteArray());
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.options.client.send(new HeadObjectCommand(this.objectOf(key)));
      return true;
    } catch (error: unknown) {
      if (error instanceof Error && (error.name === 'NotFound' || error.name === 'NoSuchKey')) return false;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.options.client.send(new DeleteObjectCommand(this.objectOf(key)));
  }
}
