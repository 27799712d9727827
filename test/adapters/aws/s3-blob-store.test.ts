// The S3 blob store passes the blob-store contract against s3rver, with and without SSE-KMS
// parameters (s3rver accepts and ignores them; what it checks is that the requests stay valid).
import { afterAll, beforeAll } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Client } from '../../../adapters/aws/clients.js';
import { S3BlobStore } from '../../../adapters/aws/s3-blob-store.js';
import { emulatorClientConfig, startS3rver, type Emulator } from '../../helpers/aws-emulators.js';
import { blobStoreContract } from '../../core/blob-store.contract.js';

let s3: Emulator;
let client: S3Client;
let prefixes = 0;

beforeAll(async () => {
  s3 = await startS3rver(['outpost-messages']);
  client = s3Client({ ...emulatorClientConfig(s3), forcePathStyle: true });
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

blobStoreContract('S3 (s3rver)', () => ({
  store: new S3BlobStore({ client, bucket: 'outpost-messages', prefix: `t${++prefixes}/` }),
  close: () => undefined,
}));

blobStoreContract('S3 with SSE-KMS (s3rver)', () => ({
  store: new S3BlobStore({ client, bucket: 'outpost-messages', prefix: `k${++prefixes}/`, kmsKeyId: 'alias/outpost-messages' }),
  close: () => undefined,
}));
