// The deployment's BATV keys in SQLite, sealed with the secret box (the key file, or KMS: any
// AsyncSecretBox). Generated on first use.
import { randomBytes } from 'node:crypto';
import { defaultBatvPolicy, nextBatvKeyIndex, type BatvKey, type BatvKeyStore, type BatvPolicy } from '../../core/batv.js';
import type { AsyncSecretBox } from '../../core/ports/secret-box.js';
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
    private readonly box: AsyncSecretBox,
    private readonly policy: BatvPolicy = defaultBatvPolicy,
  ) {}

  async keys(now: number): Promise<BatvKey[]> {
    const cutoff = now - this.policy.graceDays * DAY_MS;
    const rows = this.db
      .prepare('SELECT * FROM batv_keys WHERE retired_at IS NULL OR retired_at >= ? ORDER BY created_at DESC')
      .all(cutoff) as Row[];
    return Promise.all(rows.map((row) => this.toKey(row)));
  }

  async current(now: number): Promise<BatvKey> {
    const row = this.db.prepare('SELECT * FROM batv_keys WHERE retired_at IS NULL').get() as Row | undefined;
    return row ? this.toKey(row) : this.newKey(now, { unlessCurrent: true });
  }

  async rotate(now: number): Promise<BatvKey> {
    return this.newKey(now, { unlessCurrent: false });
  }

  /**
   * Makes a new current key. The secret is sealed before the transaction: the box may call out
   * (KMS) and a SQLite transaction is synchronous. So first uses that ran at once are told apart
   * inside the transaction (`unlessCurrent`): the first one's key becomes everyone's.
   */
  private async newKey(now: number, options: { unlessCurrent: boolean }): Promise<BatvKey> {
    const secret = randomBytes(32);
    const sealed = await this.box.seal(secret);
    const outcome = immediate(this.db, (): { made: number } | { existing: Row } => {
      if (options.unlessCurrent) {
        const existing = this.db.prepare('SELECT * FROM batv_keys WHERE retired_at IS NULL').get() as Row | undefined;
        if (existing) return { existing };
      }
      const all = (this.db.prepare('SELECT key_index, retired_at FROM batv_keys').all() as Array<Pick<Row, 'key_index' | 'retired_at'>>).map((row) => ({ index: row.key_index, retiredAt: row.retired_at }));
      const index = nextBatvKeyIndex(all, now, this.policy);
      this.db.prepare('UPDATE batv_keys SET retired_at = ? WHERE retired_at IS NULL').run(now);
      // The index may have belonged to a key past its grace period: that key is gone for good.
      this.db.prepare('DELETE FROM batv_keys WHERE key_index = ?').run(index);
      this.db.prepare('INSERT INTO batv_keys (key_index, sealed_secret, created_at, retired_at) VALUES (?, ?, ?, NULL)').run(index, sealed, now);
      return { made: index };
    });
    if ('existing' in outcome) return this.toKey(outcome.existing);
    return { index: outcome.made, secret, createdAt: now, retiredAt: null };
  }

  private async toKey(row: Row): Promise<BatvKey> {
    return { index: row.key_index, secret: await this.box.open(row.sealed_secret), createdAt: row.created_at, retiredAt: row.retired_at };
  }
}
