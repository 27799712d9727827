// Encrypts secrets at rest (DKIM private keys, BATV keys) under a key the operator controls, and
// may call out to do it: KMS on AWS (adapters/aws/kms-secret-box.ts). The synchronous SecretBox
// (the single node's key file, adapters/local/secret-box.ts) fits behind it with `asyncSecretBox`.
//
// Promises every implementation keeps:
// - `open(seal(x))` gives back x, byte for byte, in any process that has the same key;
// - sealing the same secret twice gives different texts (a fresh IV each time);
// - a sealed text that was altered, or sealed under another key, is refused with an error,
//   never opened into other bytes.

/** The synchronous form: a local key file on the single node. Keeps the same promises. */
export interface SecretBox {
  seal(plain: Buffer): string;
  open(sealed: string): Buffer;
}

export interface AsyncSecretBox {
  seal(plain: Buffer): Promise<string>;
  open(sealed: string): Promise<Buffer>;
}

/** The synchronous (key file) box behind the asynchronous port. */
export function asyncSecretBox(box: SecretBox): AsyncSecretBox {
  return {
    seal: async (plain) => box.seal(plain),
    open: async (sealed) => box.open(sealed),
  };
}
