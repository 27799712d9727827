import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { blobStoreContract } from '../../core/blob-store.contract.js';

blobStoreContract('filesystem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-blobs-'));
  return { store: new FsBlobStore(dir), close: () => rmSync(dir, { recursive: true, force: true }) };
});
