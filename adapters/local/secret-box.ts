// The single node's SecretBox: AES-256-GCM under a 32-byte key file that the operator controls.
// The file is created on first use with mode 0600; back it up with the database, because
// without it the DKIM and BATV keys in the database cannot be opened.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecretBox } from '../../core/ports.js';
import { asyncSecretBox, type AsyncSecretBox } from '../../core/ports/secret-box.js';
import { ensurePrivateDir } from './private-files.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'v1:';

export const SECRET_KEY_FILE = 'secret-box.key';

/**
 * The key file box behind the asynchronous port, as the stores take it: they work the same with
 * it as with KMS (adapters/aws/kms-secret-box.ts).
 */
export function localSecretBox(dataDir: string, fileName: string = SECRET_KEY_FILE): AsyncSecretBox {
  return asyncSecretBox(openLocalSecretBox(dataDir, fileName));
}

/** Reads the key file in `dataDir`, creating it (0600) when absent. */
export function openLocalSecretBox(dataDir: string, fileName: string = SECRET_KEY_FILE): SecretBox {
  ensurePrivateDir(dataDir);
  const path = join(dataDir, fileName);
  try {
    // 'wx' fails if the file exists, so two processes starting at once cannot both create a key.
    writeFileSync(path, randomBytes(KEY_BYTES), { flag: 'wx', mode: 0o600 });
  } catch (error: unknown) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const key = readFileSync(path);
  if (key.length !== KEY_BYTES) {
    throw new Error(`secret key file ${path} must hold exactly ${KEY_BYTES} bytes; restore it from backup`);
  }
  // A key file readable by others defeats encryption at rest: tighten it rather than refuse.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return secretBoxFromKey(key);
}

/** The box of `key` behind the asynchronous port (tests, tools). */
export function localSecretBoxFromKey(key: Buffer): AsyncSecretBox {
  return asyncSecretBox(secretBoxFromKey(key));
}

export function secretBoxFromKey(key: Buffer): SecretBox {
  if (key.length !== KEY_BYTES) throw new Error(`a secret box key has ${KEY_BYTES} bytes`);
  return {
    seal(plain: Buffer): string {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
    },
    open(sealed: string): Buffer {
      if (!sealed.startsWith(PREFIX)) throw new Error('sealed secret has an unknown format');
      const data = Buffer.from(sealed.slice(PREFIX.length), 'base64');
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error('sealed secret is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(data.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
      } catch {
        throw new Error('sealed secret does not open with this key file (wrong key file, or the data was altered)');
      }
    },
  };
}
