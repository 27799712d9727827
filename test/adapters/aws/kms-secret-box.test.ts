// The KMS secret box seals and opens with envelope encryption through the real KMS client,
// against the KMS emulator in test/helpers (GenerateDataKey/Decrypt with real AES-GCM).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KMSClient } from '@aws-sdk/client-kms';
import { kmsClient } from '../../../adapters/aws/clients.js';
import { KmsSecretBox } from '../../../adapters/aws/kms-secret-box.js';
import { secretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { asyncSecretBox, type AsyncSecretBox } from '../../../core/ports/secret-box.js';
import { emulatorClientConfig } from '../../helpers/aws-emulators.js';
import { startKmsEmulator, type KmsEmulator } from '../../helpers/kms-emulator.js';
import { randomBytes } from 'node:crypto';

let kms: KmsEmulator;
let client: KMSClient;

beforeAll(async () => {
  kms = await startKmsEmulator();
  client = kmsClient(emulatorClientConfig(kms));
});

afterAll(async () => {
  client?.destroy();
  await kms?.stop();
});

function calls(): { generate: number; decrypt: number } {
  return { generate: kms.calls.GenerateDataKey ?? 0, decrypt: kms.calls.Decrypt ?? 0 };
}

/** The promises of the AsyncSecretBox port, for any implementation. */
function secretBoxContract(name: string, open: () => AsyncSecretBox): void {
  describe(`AsyncSecretBox contract: ${name}`, () => {
    it('opens what it sealed, byte for byte, and seals the same secret differently each time', async () => {
      const box = open();
      const secret = randomBytes(1200);
      const first = await box.seal(secret);
      const second = await box.seal(secret);
      expect(first).not.toBe(second);
      expect((await box.open(first)).equals(secret)).toBe(true);
      expect((await box.open(second)).equals(secret)).toBe(true);
    });

    it('refuses a sealed text that was altered', async () => {
      const box = open();
      const sealed = await box.seal(Buffer.from('-----BEGIN PRIVATE KEY-----'));
      const [prefix, body] = [sealed.slice(0, sealed.indexOf(':') + 1), Buffer.from(sealed.slice(sealed.indexOf(':') + 1), 'base64')];
      body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 1;
      await expect(box.open(prefix + body.toString('base64'))).rejects.toThrow();
    });
  });
}

secretBoxContract('KMS envelope (KMS emulator)', () => new KmsSecretBox({ client, keyId: 'alias/outpost-test' }));
secretBoxContract('local key file', () => asyncSecretBox(secretBoxFromKey(randomBytes(32))));

describe('KmsSecretBox', () => {
  it('asks KMS for one data key for many seals, and a cold box decrypts it once for many opens', async () => {
    const before = calls();
    const sealer = new KmsSecretBox({ client, keyId: 'alias/outpost-test' });
    const secrets = Array.from({ length: 20 }, (_, i) => Buffer.from(`dkim private key ${i}`));
    const sealed = await Promise.all(secrets.map((secret) => sealer.seal(secret)));
    expect(calls().generate - before.generate).toBe(1);
    // The sealer knows its own data key: opening costs no KMS call.
    expect((await sealer.open(sealed[3] ?? '')).toString()).toBe('dkim private key 3');
    expect(calls().decrypt - before.decrypt).toBe(0);
    const opener = new KmsSecretBox({ client, keyId: kms.keyArn });
    const opened = await Promise.all(sealed.map((text) => opener.open(text)));
    expect(opened.map((buffer) => buffer.toString())).toEqual(secrets.map((buffer) => buffer.toString()));
    expect(calls().decrypt - before.decrypt).toBe(1);
  });

  it('replaces its data key after the configured number of seals or age', async () => {
    let now = 0;
    const box = new KmsSecretBox({ client, keyId: 'alias/outpost-test', dataKeyMaxUses: 2, dataKeyMaxAgeMs: 60_000, clock: { now: () => now } });
    const before = calls();
    for (let i = 0; i < 4; i++) await box.seal(Buffer.from('x'));
    expect(calls().generate - before.generate).toBe(2);
    now += 60_000;
    await box.seal(Buffer.from('x'));
    expect(calls().generate - before.generate).toBe(3);
  });

  it('does not open a secret sealed under another encryption context (KMS refuses the data key)', async () => {
    const sealed = await new KmsSecretBox({ client, keyId: 'alias/outpost-test', encryptionContext: { purpose: 'dkim', tenant: 'a' } }).seal(Buffer.from('k'));
    const other = new KmsSecretBox({ client, keyId: 'alias/outpost-test', encryptionContext: { purpose: 'dkim', tenant: 'b' } });
    await expect(other.open(sealed)).rejects.toMatchObject({ name: 'InvalidCiphertextException' });
  });

  it('names the format when given a secret sealed by the local key file', async () => {
    const local = secretBoxFromKey(randomBytes(32)).seal(Buffer.from('k'));
    await expect(new KmsSecretBox({ client, keyId: 'alias/outpost-test' }).open(local)).rejects.toThrow(/not sealed with KMS/);
  });

  it('fails a seal when KMS does not know the key, and tries again on the next seal', async () => {
    const box = new KmsSecretBox({ client, keyId: 'alias/missing' });
    await expect(box.seal(Buffer.from('k'))).rejects.toMatchObject({ name: 'NotFoundException' });
    await expect(box.seal(Buffer.from('k'))).rejects.toMatchObject({ name: 'NotFoundException' });
  });
});
