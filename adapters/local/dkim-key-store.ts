// DKIM keys in SQLite. Private keys are sealed with the SecretBox before they touch the table,
// and `list` never reads the sealed column.
import { dkimDnsRecord, DkimKeyError, type DkimAlgorithm, type DkimKeyStore, type DkimPublicKey, type DkimSigningKey } from '../../core/dkim/keys.js';
import type { Clock } from '../../core/ports.js';
import type { AsyncSecretBox } from '../../core/ports/secret-box.js';
import { systemClock } from '../../core/ports.js';
import { immediate, type Db } from './sqlite.js';

interface PublicRow {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  public_key: string;
  is_default: number;
  created_at: number;
}

const toPublic = (row: PublicRow): DkimPublicKey => ({
  domain: row.domain,
  selector: row.selector,
  algorithm: row.algorithm,
  publicKey: row.public_key,
  isDefault: row.is_default === 1,
  createdAt: row.created_at,
  dns: dkimDnsRecord(row.domain, row.selector, row.algorithm, row.public_key),
});

const PUBLIC_COLUMNS = 'domain, selector, algorithm, public_key, is_default, created_at';

export class SqliteDkimKeyStore implements DkimKeyStore {
  constructor(
    private readonly db: Db,
    private readonly box: AsyncSecretBox,
    private readonly clock: Clock = systemClock,
  ) {}

  async insert(key: {
    domain: string;
    selector: string;
    algorithm: DkimAlgorithm;
    publicKey: string;
    privateKeyPem: string;
    makeDefault: boolean;
  }): Promise<DkimPublicKey> {
    const row: PublicRow = {
      domain: key.domain,
      selector: key.selector,
      algorithm: key.algorithm,
      public_key: key.publicKey,
      is_default: key.makeDefault ? 1 : 0,
      created_at: this.clock.now(),
    };
    // Sealed before the transaction: the box may call out (KMS), and a SQLite transaction is synchronous.
    const sealed = await this.box.seal(Buffer.from(key.privateKeyPem, 'utf8'));
    immediate(this.db, () => {
      const exists = this.db.prepare('SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ?').get(key.domain, key.selector);
      if (exists) throw new DkimKeyError(`${key.domain} already has a key with selector "${key.selector}"`);
      if (key.makeDefault) this.db.prepare('UPDATE dkim_keys SET is_default = 0 WHERE domain = ?').run(key.domain);
      this.db
        .prepare(
          `INSERT INTO dkim_keys (domain, selector, algorithm, public_key, sealed_private_key, is_default, created_at)
           VALUES (@domain, @selector, @algorithm, @public_key, @sealed, @is_default, @created_at)`,
        )
        .run({ ...row, sealed });
    });
    return toPublic(row);
  }

  async list(domain?: string): Promise<DkimPublicKey[]> {
    const rows = domain
      ? this.db.prepare(`SELECT ${PUBLIC_COLUMNS} FROM dkim_keys WHERE domain = ? ORDER BY created_at, selector`).all(domain)
      : this.db.prepare(`SELECT ${PUBLIC_COLUMNS} FROM dkim_keys ORDER BY domain, created_at, selector`).all();
    return (rows as PublicRow[]).map(toPublic);
  }

  async setDefault(domain: string, selector: string): Promise<void> {
    immediate(this.db, () => {
      const exists = this.db.prepare('SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ?').get(domain, selector);
      if (!exists) throw new DkimKeyError(`${domain} has no DKIM key with selector "${selector}"; see "outpost dkim list"`);
      this.db.prepare('UPDATE dkim_keys SET is_default = (selector = ?) WHERE domain = ?').run(selector, domain);
    });
  }

  async remove(domain: string, selector: string): Promise<void> {
    immediate(this.db, () => {
      const result = this.db.prepare('DELETE FROM dkim_keys WHERE domain = ? AND selector = ?').run(domain, selector);
      if (result.changes === 0) throw new DkimKeyError(`${domain} has no DKIM key with selector "${selector}"; see "outpost dkim list"`);
      const hasDefault = this.db.prepare('SELECT 1 FROM dkim_keys WHERE domain = ? AND is_default = 1').get(domain);
      if (!hasDefault) {
        // Keep the domain signing: the newest remaining key takes over.
        this.db
          .prepare(
            `UPDATE dkim_keys SET is_default = 1 WHERE domain = ? AND selector =
               (SELECT selector FROM dkim_keys WHERE domain = ? ORDER BY created_at DESC, selector DESC LIMIT 1)`,
          )
          .run(domain, domain);
      }
    });
  }

  async signingKey(domain: string, selector?: string | null): Promise<DkimSigningKey | undefined> {
    const row = (
      selector
        ? this.db.prepare('SELECT domain, selector, algorithm, sealed_private_key FROM dkim_keys WHERE domain = ? AND selector = ?').get(domain, selector)
        : this.db.prepare('SELECT domain, selector, algorithm, sealed_private_key FROM dkim_keys WHERE domain = ? AND is_default = 1').get(domain)
    ) as { domain: string; selector: string; algorithm: DkimAlgorithm; sealed_private_key: string } | undefined;
    if (!row) return undefined;
    return {
      domain: row.domain,
      selector: row.selector,
      algorithm: row.algorithm,
      privateKeyPem: (await this.box.open(row.sealed_private_key)).toString('utf8'),
    };
  }
}
