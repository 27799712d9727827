// Passwords verified right, remembered for a while, as Dovecot's auth_cache: a client that logs in
// on every connection (a nodemailer pool, a webmail, a CMS sending each notification on a new
// session) pays the scrypt hash once per `smtp.authCacheSeconds` instead of on every AUTH.
//
// - Only successes are remembered. A wrong guess always costs the full hash, so the cache makes
//   no guessing cheaper.
// - An entry is keyed by an HMAC of the stored hash and the password under a key drawn at start,
//   never the password itself. The stored hash carries the user's salt: a changed password, or
//   another user's, never matches an old entry.
// - Concurrent checks of the same stored hash and password share one hash: ten pooled
//   connections that log in at once cost one scrypt, and so do ten copies of one guess.
// - The caller skips the cache where the answer must take the hash's time whatever the password
//   (a blocked login: see the ingress), with `remembered: false`.
import { createHmac, randomBytes } from 'node:crypto';
import { verifyPassword } from './identity.js';

export interface VerifiedPasswordsOptions {
  /** How long a verified password is remembered, in milliseconds; 0 remembers nothing. */
  ttlMs: number;
  /** Entries kept at most; the oldest is dropped first. */
  maxEntries?: number;
  now?: () => number;
  /** The full check (scrypt); a parameter so that tests can count the hashes. */
  verify?: (password: string, stored: string | null) => Promise<boolean>;
}

export class VerifiedPasswords {
  private readonly key = randomBytes(32);
  /** HMAC of stored hash and password → when it stops being trusted (epoch ms); in insertion order. */
  private readonly entries = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly fullCheck: (password: string, stored: string | null) => Promise<boolean>;

  constructor(options: VerifiedPasswordsOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
    this.fullCheck = options.verify ?? verifyPassword;
  }

  /**
   * Whether `password` matches `stored` (null: no such user, always false after the full hash's
   * time). With `remembered: false` the full hash runs whatever the cache holds, and a success is
   * not remembered either.
   */
  async verify(password: string, stored: string | null, { remembered = true }: { remembered?: boolean } = {}): Promise<{ ok: boolean; cached: boolean }> {
    if (stored === null || this.ttlMs <= 0 || !remembered) return { ok: await this.fullCheck(password, stored), cached: false };
    const id = createHmac('sha256', this.key).update(stored).update('\0').update(password.normalize('NFC')).digest('base64');
    const until = this.entries.get(id);
    if (until !== undefined) {
      if (until > this.now()) return { ok: true, cached: true };
      this.entries.delete(id);
    }
    let pending = this.inFlight.get(id);
    if (!pending) {
      pending = this.fullCheck(password, stored).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, pending);
      pending.then((ok) => ok && this.remember(id), () => undefined);
    }
    return { ok: await pending, cached: false };
  }

  /** Entries held now (expired ones included until they are met or pushed out). */
  get size(): number {
    return this.entries.size;
  }

  private remember(id: string): void {
    this.entries.delete(id);
    this.entries.set(id, this.now() + this.ttlMs);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }
}
