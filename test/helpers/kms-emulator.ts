// A small KMS emulator for tests, in the spirit of s3rver: an HTTP server speaking KMS's AWS JSON
// 1.1 protocol for the two operations envelope encryption uses, GenerateDataKey and Decrypt,
// with real cryptography. Each key is a random AES-256 key; a data key is encrypted under it with
// AES-256-GCM, the encryption context as additional authenticated data, so a wrong context, an
// altered blob or another key is refused with KMS's own error names. No KMS emulator ships with
// the project's dependencies; this one stands in for the service in the way the adapter uses it.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KmsEmulator {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The ARN of a key created at start (alias `alias/outpost-test`). */
  keyArn: string;
  /** Calls per operation, e.g. calls.GenerateDataKey. */
  calls: Record<string, number>;
  stop(): Promise<void>;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function contextBytes(context: unknown): Buffer {
  if (context === undefined) return Buffer.alloc(0);
  if (typeof context !== 'object' || context === null) throw new KmsError('ValidationException', 'EncryptionContext must be a map');
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries));
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

export async function startKmsEmulator(): Promise<KmsEmulator> {
  const keyArn = 'arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000001';
  const keys = new Map<string, Buffer>([[keyArn, randomBytes(32)]]);
  const aliases = new Map<string, string>([['alias/outpost-test', keyArn]]);
  const calls: Record<string, number> = {};

  const resolveKey = (id: unknown): string => {
    if (typeof id !== 'string') throw new KmsError('ValidationException', 'KeyId is required');
    const arn = aliases.get(id) ?? (keys.has(id) ? id : [...keys.keys()].find((arn) => arn.endsWith(`/${id}`)));
    if (!arn) throw new KmsError('NotFoundException', `Key '${id}' does not exist`);
    return arn;
  };

  const operations: Record<string, (input: Record<string, unknown>) => Record<string, unknown>> = {
    GenerateDataKey(input) {
      const arn = resolveKey(input.KeyId);
      const master = keys.get(arn) ?? Buffer.alloc(0);
      if (input.KeySpec !== 'AES_256' && input.NumberOfBytes !== 32) throw new KmsError('ValidationException', 'KeySpec AES_256 expected');
      const plain = randomBytes(32);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', master, iv);
      cipher.setAAD(contextBytes(input.EncryptionContext));
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      const arnBytes = Buffer.from(arn);
      const blob = Buffer.concat([Buffer.from([arnBytes.length]), arnBytes, iv, cipher.getAuthTag(), body]);
      return { KeyId: arn, Plaintext: plain.toString('base64'), CiphertextBlob: blob.toString('base64') };
    },
    Decrypt(input) {
      if (typeof input.CiphertextBlob !== 'string') throw new KmsError('ValidationException', 'CiphertextBlob is required');
      const blob = Buffer.from(input.CiphertextBlob, 'base64');
      const arnLength = blob[0] ?? 0;
      const arn = blob.subarray(1, 1 + arnLength).toString();
      const master = keys.get(arn);
      if (!master || blob.length < 1 + arnLength + 28) throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid');
      if (input.KeyId !== undefined && resolveKey(input.KeyId) !== arn) throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext');
      const iv = blob.subarray(1 + arnLength, 13 + arnLength);
      const tag = blob.subarray(13 + arnLength, 29 + arnLength);
      const decipher = createDecipheriv('aes-256-gcm', master, iv);
      decipher.setAAD(contextBytes(input.EncryptionContext));
      decipher.setAuthTag(tag);
      try {
        const plain = Buffer.concat([decipher.update(blob.subarray(29 + arnLength)), decipher.final()]);
        return { KeyId: arn, Plaintext: plain.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      } catch {
        throw new KmsError('InvalidCiphertextException', 'The ciphertext is invalid');
      }
    },
  };

  const server: Server = createServer((request, response) => {
    void (async () => {
      const reply = (status: number, body: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(body));
      };
      try {
        const target = String(request.headers['x-amz-target'] ?? '');
        const operation = target.startsWith('TrentService.') ? operations[target.slice('TrentService.'.length)] : undefined;
        if (!request.headers.authorization?.startsWith('AWS4-HMAC-SHA256')) throw new KmsError('MissingAuthenticationTokenException', 'Request is missing Authentication Token');
        if (!operation) throw new KmsError('UnknownOperationException', `unsupported operation ${target}`);
        const parsed: unknown = JSON.parse((await readBody(request)) || '{}');
        if (typeof parsed !== 'object' || parsed === null) throw new KmsError('SerializationException', 'body is not an object');
        calls[target.slice('TrentService.'.length)] = (calls[target.slice('TrentService.'.length)] ?? 0) + 1;
        reply(200, operation(Object.fromEntries(Object.entries(parsed))));
      } catch (error: unknown) {
        if (error instanceof KmsError) reply(400, { __type: error.type, message: error.message });
        else reply(500, { __type: 'KMSInternalException', message: error instanceof Error ? error.message : String(error) });
      }
    })();
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? (address satisfies AddressInfo).port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'AKIDEMULATOR', secretAccessKey: 'emulator-secret' },
    keyArn,
    calls,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
