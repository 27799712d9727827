// DKIM keys of the served domains: several selectors per domain, one of them the default.
// Private keys stay inside the server: the store port hands them out only to the signer
// (`signingKey`); everything listed or printed is public data (the DNS record to publish).
import { generateKeyPair as generateKeyPairCallback, createPublicKey } from 'node:crypto';
import { promisify } from 'node:util';
import type { DkimAlgorithm, DkimDnsRecord, DkimKeyStore, DkimPublicKey } from '../ports/dkim-keys.js';
export type { DkimAlgorithm, DkimDnsRecord, DkimKeyStore, DkimPublicKey, DkimSigningKey } from '../ports/dkim-keys.js';

const generateKeyPair = promisify(generateKeyPairCallback);

export class DkimKeyError extends Error {
  override name = 'DkimKeyError';
}

// A selector is one or more DNS labels (RFC 6376 §3.1); we keep to letters, digits and hyphens.
const SELECTOR_RE = /^(?=.{1,63}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i;

export function normaliseSelector(selector: string): string {
  const value = selector.trim().toLowerCase();
  if (!SELECTOR_RE.test(value)) {
    throw new DkimKeyError(`"${selector}" is not a valid DKIM selector: use letters, digits and hyphens (dots between labels), at most 63 characters`);
  }
  return value;
}

/** Generates a key pair; RSA keys have 2048 bits (RFC 8301 minimum 1024, 2048 is the common ceiling of DNS UIs). */
export async function generateDkimKeyPair(algorithm: DkimAlgorithm): Promise<{ publicKey: string; privateKeyPem: string }> {
  if (algorithm === 'rsa') {
    const pair = await generateKeyPair('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    return { publicKey: pair.publicKey.toString('base64'), privateKeyPem: pair.privateKey };
  }
  const pair = await generateKeyPair('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey: rawEd25519(pair.publicKey).toString('base64'), privateKeyPem: pair.privateKey };
}

/** The public p= value derived from a private key (used to check a stored pair is consistent). */
export function publicKeyOf(privateKeyPem: string, algorithm: DkimAlgorithm): string {
  const der = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return algorithm === 'rsa' ? der.toString('base64') : rawEd25519(der).toString('base64');
}

// An Ed25519 SPKI is a 12-byte algorithm prefix followed by the 32-byte key; RFC 8463 publishes the raw key.
function rawEd25519(spki: Buffer): Buffer {
  if (spki.length !== 44) throw new DkimKeyError('unexpected Ed25519 public key encoding');
  return spki.subarray(12);
}

export function dkimDnsRecord(domain: string, selector: string, algorithm: DkimAlgorithm, publicKey: string): DkimDnsRecord {
  const name = `${selector}._domainkey.${domain}.`;
  const value = `v=DKIM1; k=${algorithm}; p=${publicKey}`;
  const strings: string[] = [];
  for (let at = 0; at < value.length; at += 255) strings.push(`"${value.slice(at, at + 255)}"`);
  return { name, value, zoneLine: `${name} IN TXT ${strings.join(' ')}` };
}

/** A fresh selector name: `oYYYYMMDD`, with a suffix when taken (several keys made on one day). */
export function newSelectorName(now: number, taken: ReadonlySet<string>): string {
  const day = new Date(now).toISOString().slice(0, 10).replaceAll('-', '');
  const base = `o${day}`;
  if (!taken.has(base)) return base;
  for (let n = 2; ; n += 1) {
    const candidate = `${base}-${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** Generates and stores a key for `domain` (the first one of a domain becomes its default). */
export async function addDkimKey(
  store: DkimKeyStore,
  input: { domain: string; selector?: string; algorithm?: DkimAlgorithm; makeDefault?: boolean; now: number },
): Promise<DkimPublicKey> {
  const domain = input.domain.trim().toLowerCase().replace(/\.$/, '');
  const existing = await store.list(domain);
  const taken = new Set(existing.map((key) => key.selector));
  const selector = input.selector ? normaliseSelector(input.selector) : newSelectorName(input.now, taken);
  if (taken.has(selector)) {
    throw new DkimKeyError(`${domain} already has a key with selector "${selector}"; choose another selector or remove that one first`);
  }
  const algorithm = input.algorithm ?? 'rsa';
  const pair = await generateDkimKeyPair(algorithm);
  return store.insert({ domain, selector, algorithm, ...pair, makeDefault: input.makeDefault ?? existing.length === 0 });
}

/**
 * Rotation: a new selector becomes the default; the old keys stay usable (a user whose
 * `dkimSelector` names one keeps signing with it) until removed, so DNS can catch up.
 */
export async function rotateDkimKey(
  store: DkimKeyStore,
  input: { domain: string; selector?: string; algorithm?: DkimAlgorithm; now: number },
): Promise<DkimPublicKey> {
  return addDkimKey(store, { ...input, makeDefault: true });
}
