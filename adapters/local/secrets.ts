// Secrets the single node keeps in its data folder: the operator token and the TLS certificate.
// Each is created once, readable by the owner only, and replaceable by configuration.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensurePrivateDir, PRIVATE_FILE_MODE, tighten } from './private-files.js';

const run = promisify(execFile);

export async function operatorToken(dataDir: string, configured: string | undefined): Promise<{ token: string; created: boolean; path?: string }> {
  if (configured) return { token: configured, created: false };
  const path = join(dataDir, 'operator-token');
  if (existsSync(path)) {
    tighten(path, PRIVATE_FILE_MODE);
    return { token: (await readFile(path, 'utf8')).trim(), created: false, path };
  }
  ensurePrivateDir(dataDir);
  const token = `op_${randomBytes(24).toString('base64url')}`;
  await writeFile(path, token + '\n', { mode: 0o600, flag: 'wx' });
  return { token, created: true, path };
}

/** The TLS key and certificate: configured files, or a self-signed pair made on first start. */
export async function tlsMaterial(
  dataDir: string,
  hostname: string,
  configured: { keyFile?: string; certFile?: string },
): Promise<{ key: Buffer; cert: Buffer; selfSigned: boolean; certPath: string }> {
  if (configured.keyFile || configured.certFile) {
    if (!configured.keyFile || !configured.certFile) throw new Error('set both smtp.tlsKeyFile and smtp.tlsCertFile, or neither');
    return { key: await readFile(configured.keyFile), cert: await readFile(configured.certFile), selfSigned: false, certPath: configured.certFile };
  }
  const dir = join(dataDir, 'tls');
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    ensurePrivateDir(dir);
    const cn = hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650',
      '-keyout', keyPath, '-out', certPath, '-subj', `/CN=${cn}`,
      '-addext', `subjectAltName=DNS:${cn},DNS:localhost,IP:127.0.0.1`,
    ]);
    await chmod(keyPath, PRIVATE_FILE_MODE);
  }
  ensurePrivateDir(dir);
  tighten(keyPath, PRIVATE_FILE_MODE);
  return { key: await readFile(keyPath), cert: await readFile(certPath), selfSigned: true, certPath };
}
