// The deployment's BATV keys in SQLite, sealed with the SecretBox. Generated on first use.
import { randomBytes } from 'node:crypto';
import { defaultBatvPolicy, nextBatvKeyIndex, type BatvKey, type BatvKeyStore, type BatvPolicy } from '../../core/batv.js';
import type { SecretBox } from '../../core/ports.js';
import { immediate, type Db } from './sqlite.js';

interface Row {
  key_index: number;
  sealed_secret: string;
  created_at: number;
  retired_at: number | null;
}

const DAY_MS = 86_400_000;

export class SqliteBatvKeyStore implements BatvKeyStore {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly policy: BatvPolicy = defaultBatvPolicy,
  ) {}

  async keys(now: number): Promise<BatvKey[]> {
    const cutoff = now - this.policy.graceDays * DAY_MS;
    const rows = this.db
      .prepare('SELECT * FROM batv_keys WHERE retired_at IS NULL OR retired_at >= ? ORDER BY created_at DESC')
      .all(cutoff) as Row[];
    return rows.map((row) => this.toKey(row));
  }

  async current(now: number): Promise<BatvKey> {
    const row = this.db.prepare('SELECT * FROM batv_keys WHERE retired_at IS NULL').get() as Row | undefined;
    return row ? this.toKey(row) : this.rotate(now);
  }

  async rotate(now: number): Promise<BatvKey> {
    return immediate(this.db, () => {
      const all = (this.db.prepare('SELECT * FROM batv_keys').all() as Row[]).map((row) => this.toKey(row));
      const index = nextBatvKeyIndex(all, now, this.policy);
      this.db.prepare('UPDATE batv_keys SET retired_at = ? WHERE retired_at IS NULL').run(now);
      // The index may have belonged to a key past its grace period: that key is gone for good.
      this.db.prepare('DELETE FROM batv_keys WHERE key_index = ?').run(index);
      const secret = randomBytes(32);
      this.db
        .prepare('INSERT INTO batv_keys (key_index, sealed_secret, created_at, retired_at) VALUES (?, ?, ?, NULL)')
        .run(index, this.box.seal(secret), now);
      return { index, secret, createdAt: now, retiredAt: null };
    });
  }

  private toKey(row: Row): BatvKey {
    return { index: row.key_index, secret: this.box.open(row.sealed_secret), createdAt: row.created_at, retiredAt: row.retired_at };
  }
}
