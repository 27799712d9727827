// LoginSourceStore on SQLite: one row per (login, source), renewed by every successful login and
// kept until its expiry (soft state, like the counters: housekeeping deletes expired rows,
// and reads ignore them in the meantime).
import type { LoginSourceStore } from '../../core/login-sources.js';
import type { Db } from './sqlite.js';

export class SqliteLoginSourceStore implements LoginSourceStore {
  constructor(private readonly db: Db) {}

  async remember(login: string, source: string, at: number, keepMs: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO login_sources (login, source, last_success, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (login, source) DO UPDATE SET last_success = excluded.last_success, expires_at = MAX(expires_at, excluded.expires_at)`,
      )
      .run(login, source, at, at + keepMs);
  }

  async isFamiliar(login: string, source: string, now: number): Promise<boolean> {
    const row = this.db.prepare('SELECT 1 FROM login_sources WHERE login = ? AND source = ? AND expires_at > ?').get(login, source, now);
    return row !== undefined;
  }

  async purgeExpired(now: number): Promise<number> {
    return this.db.prepare('DELETE FROM login_sources WHERE expires_at <= ?').run(now).changes;
  }
}
