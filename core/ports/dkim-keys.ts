// DKIM keys of the served domains, private keys sealed at rest: DynamoDB + KMS on AWS
// (adapters/aws/dynamodb-dkim-key-store.ts), SQLite + the key file on the single node
// (adapters/local/dkim-key-store.ts). Contract: test/core/dkim-key-store.contract.ts.
//
// Promises every implementation keeps:
// - several selectors per domain, exactly one of them the default; the first key of a domain
//   becomes its default; removing the default hands the role to the newest remaining key;
// - `list` hands out public data only (never a private key), every domain by name then age;
// - `signingKey` (for the signer only) gives the named selector, or the default when none is named;
// - private keys are sealed at rest with the SecretBox.

export type DkimAlgorithm = 'rsa' | 'ed25519';

/** What may leave the server: the selector, its algorithm and the DNS record to publish. */
export interface DkimPublicKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  /** The p= value: base64 of the SPKI DER (RSA) or of the raw 32-byte key (Ed25519, RFC 8463). */
  publicKey: string;
  isDefault: boolean;
  createdAt: number;
  dns: DkimDnsRecord;
}

export interface DkimSigningKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

export interface DkimDnsRecord {
  /** `SELECTOR._domainkey.DOMAIN.` */
  name: string;
  /** The TXT value as one string. */
  value: string;
  /** The zone-file line, the value split into strings of at most 255 characters. */
  zoneLine: string;
}

/** The store port. Private keys are sealed at rest by the adapter. */
export interface DkimKeyStore {
  /** Stores a generated key; the first key of a domain becomes its default. */
  insert(key: { domain: string; selector: string; algorithm: DkimAlgorithm; publicKey: string; privateKeyPem: string; makeDefault: boolean }): Promise<DkimPublicKey>;
  /** Public data only; all domains when `domain` is omitted. */
  list(domain?: string): Promise<DkimPublicKey[]>;
  setDefault(domain: string, selector: string): Promise<void>;
  /** Removes a selector; removing the default makes the newest remaining key the default. */
  remove(domain: string, selector: string): Promise<void>;
  /** For the signer only: the given selector, or the domain's default when omitted. */
  signingKey(domain: string, selector?: string | null): Promise<DkimSigningKey | undefined>;
}
