// Passwords verified right, remembered for smtp.authCacheSeconds: what is remembered, for how
// long, and what always pays the full scrypt hash. The hashes are real (hashPassword and
// verifyPassword); the test counts them.
import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../core/identity.js';
import { VerifiedPasswords } from '../../core/verified-passwords.js';

const PASSWORD = 'correct horse battery';
let stored: string;
let other: string;

beforeAll(async () => {
  stored = await hashPassword(PASSWORD);
  other = await hashPassword(PASSWORD); // the same password, another salt: another user
});

/** A cache on a clock the test moves, counting the full checks it runs. */
function counted(ttlMs: number, maxEntries?: number) {
  const clock = { now: 1_000_000 };
  const hashed: Array<string | null> = [];
  const passwords = new VerifiedPasswords({
    ttlMs,
    maxEntries,
    now: () => clock.now,
    verify: (password, hash) => {
      hashed.push(hash);
      return verifyPassword(password, hash);
    },
  });
  return { passwords, clock, hashed };
}

describe('VerifiedPasswords', () => {
  it('hashes a right password once, then answers from memory until the time is up', async () => {
    const { passwords, clock, hashed } = counted(60_000);
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: false });
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: true });
    clock.now += 59_999;
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: true });
    expect(hashed).toHaveLength(1);
    clock.now += 1;
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: false });
    expect(hashed).toHaveLength(2);
  });

  it('never remembers a wrong password: every guess pays the hash', async () => {
    const { passwords, hashed } = counted(60_000);
    for (let i = 0; i < 3; i++) expect(await passwords.verify('a wrong guess', stored)).toEqual({ ok: false, cached: false });
    expect(hashed).toHaveLength(3);
    // A stranger's guesses hold no memory either, however many.
    for (let i = 0; i < 20; i++) await passwords.verify(`guess ${i}`, stored);
    expect(passwords.size).toBe(0);
  });

  it('does not let a remembered password stand for another password, another user or a changed hash', async () => {
    const { passwords, hashed } = counted(60_000);
    expect((await passwords.verify(PASSWORD, stored)).ok).toBe(true);
    expect(await passwords.verify(`${PASSWORD}!`, stored)).toEqual({ ok: false, cached: false });
    expect(await passwords.verify(PASSWORD.toUpperCase(), stored)).toEqual({ ok: false, cached: false });
    // Another user with the same password: its own salt, its own hash, its own first check.
    expect(await passwords.verify(PASSWORD, other)).toEqual({ ok: true, cached: false });
    // The password changed: the stored hash is new and the old password no longer opens it.
    const changed = await hashPassword('a new password 2');
    expect(await passwords.verify(PASSWORD, changed)).toEqual({ ok: false, cached: false });
    expect(hashed).toHaveLength(5);
  });

  it('answers an unknown user (no hash) false after a full hash, and remembers nothing for it', async () => {
    const { passwords, hashed } = counted(60_000);
    expect(await passwords.verify(PASSWORD, null)).toEqual({ ok: false, cached: false });
    expect(await passwords.verify(PASSWORD, null)).toEqual({ ok: false, cached: false });
    expect(hashed).toEqual([null, null]);
    expect(passwords.size).toBe(0);
  });

  it('hashes once for checks of the same password that arrive together', async () => {
    const { passwords, hashed } = counted(60_000);
    const answers = await Promise.all(Array.from({ length: 10 }, () => passwords.verify(PASSWORD, stored)));
    expect(answers.every((answer) => answer.ok)).toBe(true);
    expect(hashed).toHaveLength(1);
    const guesses = await Promise.all(Array.from({ length: 5 }, () => passwords.verify('one wrong guess', stored)));
    expect(guesses.every((answer) => !answer.ok)).toBe(true);
    expect(hashed).toHaveLength(2);
  });

  it('with remembered: false, hashes whatever it holds and keeps nothing new', async () => {
    const { passwords, hashed } = counted(60_000);
    expect(await passwords.verify(PASSWORD, other, { remembered: false })).toEqual({ ok: true, cached: false });
    expect(passwords.size).toBe(0);
    await passwords.verify(PASSWORD, stored);
    expect(await passwords.verify(PASSWORD, stored, { remembered: false })).toEqual({ ok: true, cached: false });
    expect(hashed).toHaveLength(3);
  });

  it('with a time of 0, hashes every check', async () => {
    const { passwords, hashed } = counted(0);
    await passwords.verify(PASSWORD, stored);
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: false });
    expect(hashed).toHaveLength(2);
    expect(passwords.size).toBe(0);
  });

  it('holds at most maxEntries, dropping the oldest', async () => {
    const { passwords, hashed } = counted(60_000, 1);
    await passwords.verify(PASSWORD, stored);
    await passwords.verify(PASSWORD, other);
    expect(passwords.size).toBe(1);
    expect(await passwords.verify(PASSWORD, other)).toEqual({ ok: true, cached: true });
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: false });
    expect(hashed).toHaveLength(3);
  });

  it('remembers nothing when the hash fails (out of memory): every check waiting for it fails, the next one hashes again', async () => {
    let calls = 0;
    const passwords = new VerifiedPasswords({
      ttlMs: 60_000,
      verify: async (password, hash) => {
        calls += 1;
        if (calls === 1) throw new Error('scrypt: memory limit exceeded');
        return verifyPassword(password, hash);
      },
    });
    const together = await Promise.allSettled([passwords.verify(PASSWORD, stored), passwords.verify(PASSWORD, stored)]);
    expect(together.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(passwords.size).toBe(0);
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: false });
    expect(await passwords.verify(PASSWORD, stored)).toEqual({ ok: true, cached: true });
    expect(calls).toBe(2);
  });
});
