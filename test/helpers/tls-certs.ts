// Certificates made with openssl for TLS tests: a private CA and leaf certificates for chosen
// names (DNS names and IP addresses in subjectAltName), or a self-signed one. Small EC keys, two
// days of validity, in a temporary folder the caller removes with `remove()`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  key: string;
  cert: string;
}

export interface TestCa {
  /** Path of the CA certificate (PEM), for delivery.tlsCaFile. */
  caFile: string;
  /** A certificate signed by this CA for `names` (a name that is an IP address becomes an IP SAN). */
  issue(names: string[]): KeyPair;
  /** A self-signed certificate for `names`, signed by no CA. */
  selfSigned(names: string[]): KeyPair;
  remove(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function subjectAltName(names: string[]): string {
  return 'subjectAltName=' + names.map((name) => (/^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',');
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-tls-'));
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Outpost Test CA']);
  let serial = 0;
  return {
    caFile: join(dir, 'ca.pem'),
    issue(names) {
      serial += 1;
      const base = `leaf${serial}`;
      writeFileSync(join(dir, `${base}.ext`), `${subjectAltName(names)}\nbasicConstraints=CA:FALSE\n`);
      openssl(['req', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0] ?? 'localhost'}`]);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(1000 + serial), '-out', `${base}.pem`, '-days', '2', '-extfile', `${base}.ext`]);
      return { key: readFileSync(join(dir, `${base}.key`), 'utf8'), cert: readFileSync(join(dir, `${base}.pem`), 'utf8') };
    },
    selfSigned(names) {
      serial += 1;
      const base = `self${serial}`;
      openssl(['req', '-x509', ...EC, '-keyout', `${base}.key`, '-out', `${base}.pem`, '-days', '2', '-subj', `/CN=${names[0] ?? 'localhost'}`, '-addext', subjectAltName(names)]);
      return { key: readFileSync(join(dir, `${base}.key`), 'utf8'), cert: readFileSync(join(dir, `${base}.pem`), 'utf8') };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
