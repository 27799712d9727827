// AsyncSecretBox with KMS envelope encryption. A data key (AES-256) comes from KMS's
// GenerateDataKey under the deployment's key; secrets are sealed locally with AES-256-GCM under
// it, and the sealed text carries the data key as KMS encrypted it. Opening asks KMS to decrypt
// that data key once and keeps the plaintext key in memory, so a Lambda opening the DKIM key of
// every message calls KMS once per container, not once per message. A sealing key is replaced
// after `dataKeyMaxAgeMs` or `dataKeyMaxUses`, so one data key protects a bounded amount.
//
// Sealed format: "kms1:" + base64( u16 length of the encrypted data key | encrypted data key |
// 12-byte IV | 16-byte GCM tag | ciphertext ), with the encrypted data key as additional
// authenticated data: swapping in another data key breaks the tag.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { AsyncSecretBox } from '../../core/ports/secret-box.js';
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';

const PREFIX = 'kms1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export interface KmsSecretBoxOptions {
  client: KMSClient;
  /** Key id, ARN or alias of the KMS key that wraps the data keys. */
  keyId: string;
  /** Bound into every data key: a sealed secret opens only with the same context. */
  encryptionContext?: Record<string, string>;
  /** Default 1 hour. */
  dataKeyMaxAgeMs?: number;
  /** Default 10,000 seals. */
  dataKeyMaxUses?: number;
  /** Data keys kept for opening, most recently used first. Default 64. */
  openCacheSize?: number;
  clock?: Clock;
}

interface SealingKey {
  plain: Buffer;
  encrypted: Buffer;
  createdAt: number;
  uses: number;
}

export class KmsSecretBox implements AsyncSecretBox {
  private sealing: Promise<SealingKey> | undefined;
  private readonly opening = new Map<string, Promise<Buffer>>();
  private readonly clock: Clock;
  private readonly context: Record<string, string>;

  constructor(private readonly options: KmsSecretBoxOptions) {
    this.clock = options.clock ?? systemClock;
    this.context = options.encryptionContext ?? { purpose: 'outpost-secret-box' };
  }

  async seal(plain: Buffer): Promise<string> {
    const key = await this.sealingKey();
    key.uses += 1;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.plain, iv);
    cipher.setAAD(key.encrypted);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(key.encrypted.length);
    return PREFIX + Buffer.concat([length, key.encrypted, iv, cipher.getAuthTag(), body]).toString('base64');
  }

  async open(sealed: string): Promise<Buffer> {
    if (!sealed.startsWith(PREFIX)) throw new Error('sealed secret was not sealed with KMS (unknown format)');
    const data = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    if (data.length < 2) throw new Error('sealed secret is truncated');
    const keyLength = data.readUInt16BE(0);
    if (keyLength === 0 || data.length < 2 + keyLength + IV_BYTES + TAG_BYTES) throw new Error('sealed secret is truncated');
    const encrypted = data.subarray(2, 2 + keyLength);
    const iv = data.subarray(2 + keyLength, 2 + keyLength + IV_BYTES);
    const tag = data.subarray(2 + keyLength + IV_BYTES, 2 + keyLength + IV_BYTES + TAG_BYTES);
    const body = data.subarray(2 + keyLength + IV_BYTES + TAG_BYTES);
    const key = await this.dataKey(encrypted);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(encrypted);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      throw new Error('sealed secret does not open (the data was altered)');
    }
  }

  private sealingKey(): Promise<SealingKey> {
    const maxAge = this.options.dataKeyMaxAgeMs ?? 3_600_000;
    const maxUses = this.options.dataKeyMaxUses ?? 10_000;
    const current = this.sealing;
    if (current) {
      return current.then((key) => (this.clock.now() - key.createdAt < maxAge && key.uses < maxUses ? key : this.renewSealingKey(current)));
    }
    return this.renewSealingKey(undefined);
  }

  /** One GenerateDataKey at a time: concurrent seals that find the key stale share the new one. */
  private renewSealingKey(stale: Promise<SealingKey> | undefined): Promise<SealingKey> {
    if (this.sealing !== stale && this.sealing !== undefined) return this.sealingKey();
    const next = this.options.client
      .send(new GenerateDataKeyCommand({ KeyId: this.options.keyId, KeySpec: 'AES_256', EncryptionContext: this.context }))
      .then((result): SealingKey => {
        if (!result.Plaintext || result.Plaintext.length !== KEY_BYTES || !result.CiphertextBlob) throw new Error('KMS returned no usable data key');
        if (result.CiphertextBlob.length > 0xffff) throw new Error('KMS returned an encrypted data key too long to store');
        const plain = Buffer.from(result.Plaintext);
        const encrypted = Buffer.from(result.CiphertextBlob);
        this.remember(encrypted.toString('base64'), Promise.resolve(plain));
        return { plain, encrypted, createdAt: this.clock.now(), uses: 0 };
      });
    this.sealing = next;
    next.catch(() => {
      if (this.sealing === next) this.sealing = undefined;
    });
    return next;
  }

  private dataKey(encrypted: Buffer): Promise<Buffer> {
    const id = encrypted.toString('base64');
    const cached = this.opening.get(id);
    if (cached) {
      this.remember(id, cached);
      return cached;
    }
    const decrypted = this.options.client
      .send(new DecryptCommand({ CiphertextBlob: encrypted, KeyId: this.options.keyId, EncryptionContext: this.context }))
      .then((result) => {
        if (!result.Plaintext || result.Plaintext.length !== KEY_BYTES) throw new Error('KMS returned no usable data key');
        return Buffer.from(result.Plaintext);
      });
    this.remember(id, decrypted);
    decrypted.catch(() => this.opening.delete(id));
    return decrypted;
  }

  private remember(id: string, key: Promise<Buffer>): void {
    this.opening.delete(id);
    this.opening.set(id, key);
    const limit = this.options.openCacheSize ?? 64;
    while (this.opening.size > limit) {
      const oldest = this.opening.keys().next().value;
      if (oldest === undefined) break;
      this.opening.delete(oldest);
    }
  }
}
