// Failed logins over real SMTP sessions (STARTTLS + AUTH PLAIN) against a running single node:
// every spelling of a login counts towards one limit, and strangers hammering a login are
// blocked without locking its owner out of the places the owner logs in from. Each client binds
// its own loopback source address (127.0.0.x) so that sources differ as they would on the net.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, type OutgoingUser, type Tenant } from '../../core/identity.js';
import { parseReply, rawSession, rawTransaction, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import type { RawSmtp } from '../helpers/smtp-client.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

const DAY = 86_400_000;
const PER_USER = 4;

let e2e: E2eNode;
let acme: Tenant;
const open: RawSmtp[] = [];

beforeAll(async () => {
  e2e = await startE2eNode({
    config: {
      policy: {
        // Many sources fail on purpose: keep their internal reputation from throttling them.
        reputation: { throttleScore: 10_000, rejectScore: 20_000 },
        authFailure: { perConnection: 3, perUser: PER_USER, perIp: 1000, windowMinutes: 60, blockMinutes: 60 },
      },
    },
  });
  acme = await e2e.tenant('acme', ['acme.test', 'other.test']);
});

afterEach(() => {
  for (const smtp of open.splice(0)) smtp.close();
});

afterAll(async () => {
  await e2e?.stop();
});

/** AUTH PLAIN as `login` from `source` (127.0.0.x); the reply. */
async function authFrom(source: string, login: string, password?: string): Promise<{ smtp: RawSmtp; reply: string }> {
  const { smtp, auth } = await rawSession(e2e.node.ports.submission, login, password, { localAddress: source });
  open.push(smtp);
  return { smtp, reply: auth ?? '' };
}

const code = (reply: string) => {
  const { code: value, enhanced } = parseReply(reply);
  return `${value} ${enhanced}`;
};

describe('failed logins are counted under the name the login is looked up by', () => {
  it('refuses every spelling of a blocked login, the right password included', async () => {
    await e2e.user(acme, 'bob@other.test');
    // Spelled variants that all log in as bob@other.test (the domain is trimmed, dot-stripped, lower-cased).
    const variants = ['BOB@other.test', 'bob@\u3000other.test.', 'bob@OTHER.TEST.', ' bob@other.test'];
    const before = await authFrom('127.0.0.31', variants[1] ?? '');
    expect(before.reply, 'the odd spelling is a real login').toMatch(/^235 /);
    before.smtp.close();

    // PER_USER wrong passwords, each spelled differently, from strangers' addresses.
    for (let i = 0; i < PER_USER; i++) {
      const variant = variants[i % variants.length] ?? '';
      expect(code((await authFrom(`127.0.0.${40 + i}`, variant, `wrong password ${i}`)).reply)).toBe('535 5.7.8');
    }
    for (const variant of ['bob@other.test', ...variants]) {
      const attempt = await authFrom('127.0.0.50', variant);
      expect(code(attempt.reply), JSON.stringify(variant)).toBe('421 4.7.0');
      expect(attempt.reply).toMatch(/Too many failed logins for this account/);
    }
  });
});

describe('smart lockout: strangers cannot lock a user out', () => {
  it('blocks strangers, keeps the familiar source working, and locks nothing', async () => {
    const carol = await e2e.user(acme, 'carol@acme.test');
    const home = '127.0.0.10';
    const first = await authFrom(home, 'carol@acme.test');
    expect(first.reply).toMatch(/^235 /);
    first.smtp.close();

    // Strangers hammer the login from several addresses, three guesses per connection.
    for (let i = 0; i < 2; i++) {
      const stranger = `127.0.0.${20 + i}`;
      const { smtp } = await authFrom(stranger, 'carol@acme.test', 'guess 0');
      expect(code(await smtp.authPlain('carol@acme.test', 'guess 1'))).toMatch(/^(535 5\.7\.8|421 4\.7\.0)$/);
    }
    // PER_USER failures reached: strangers are refused, even with the right password.
    for (const stranger of ['127.0.0.20', '127.0.0.21', '127.0.0.22']) {
      const attempt = await authFrom(stranger, 'carol@acme.test');
      expect(code(attempt.reply), stranger).toBe('421 4.7.0');
      expect(await attempt.smtp.closedByServer(), `${stranger} is disconnected`).toBe(true);
    }

    // The owner's familiar address logs in and sends as before.
    const own = await authFrom(home, 'carol@acme.test');
    expect(own.reply).toMatch(/^235 /);
    const sent = await rawTransaction(own.smtp, { mailFrom: 'carol@acme.test', rcptTo: ['friend@example.org'] });
    expect(sent.mail).toMatch(/^250 /);
    expect(sent.rcpt[0]).toMatch(/^250 /);
    // The account itself is not locked (policy.authFailure.lockUser is off by default).
    expect(await e2e.node.stores.lockStore.history(carol.id)).toEqual([]);

    // Familiarity ends 30 days after the last successful login from a source.
    e2e.clock.advance(31 * DAY);
    for (let i = 0; i < PER_USER; i++) {
      expect(code((await authFrom(`127.0.0.${60 + i}`, 'carol@acme.test', `late guess ${i}`)).reply)).toBe('535 5.7.8');
    }
    expect(code((await authFrom(home, 'carol@acme.test')).reply)).toBe('421 4.7.0');
  });
});

/** How many AUTH passwords the node has checked so far, by how (smtp.authCacheSeconds). */
async function passwordChecks(): Promise<{ hashed: number; remembered: number }> {
  const response = await fetch(`http://127.0.0.1:${e2e.node.ports.http}/metrics`, { headers: { authorization: `Bearer ${e2e.node.operatorToken.token}` } });
  const text = await response.text();
  const count = (how: string) => Number(new RegExp(`^outpost_smtp_auth_password_checks_total\\{how="${how}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hashed: count('hashed'), remembered: count('remembered') };
}

/** A user with a password (and so a salted hash) of its own: the fixture's users share one hash. */
async function userWithOwnPassword(identity: string, password: string): Promise<OutgoingUser> {
  const user = await e2e.user(acme, identity);
  return e2e.node.stores.configStore.updateUser(user.id, { passwordHash: await hashPassword(password) });
}

describe('passwords verified right are remembered (smtp.authCacheSeconds, 300 by default)', () => {
  it('hashes the first login, remembers the next, and forgets a password that changed', async () => {
    const dave = await userWithOwnPassword('dave@acme.test', 'dave password 1');
    const before = await passwordChecks();
    expect((await authFrom('127.0.0.70', 'dave@acme.test', 'dave password 1')).reply).toMatch(/^235 /);
    expect((await authFrom('127.0.0.71', 'dave@acme.test', 'dave password 1')).reply).toMatch(/^235 /);
    expect(await passwordChecks()).toEqual({ hashed: before.hashed + 1, remembered: before.remembered + 1 });

    await e2e.node.stores.configStore.updateUser(dave.id, { passwordHash: await hashPassword('the new password 7') });
    expect(code((await authFrom('127.0.0.70', 'dave@acme.test', 'dave password 1')).reply), 'the old password no longer logs in').toBe('535 5.7.8');
    expect((await authFrom('127.0.0.70', 'dave@acme.test', 'the new password 7')).reply).toMatch(/^235 /);
    expect(await passwordChecks()).toEqual({ hashed: before.hashed + 3, remembered: before.remembered + 1 });
  });

  it('hashes every login while the login is blocked, the remembered right password included', async () => {
    await userWithOwnPassword('erin@acme.test', 'erin password 1');
    const home = '127.0.0.72';
    expect((await authFrom(home, 'erin@acme.test', 'erin password 1')).reply).toMatch(/^235 /);
    for (let i = 0; i < PER_USER; i++) {
      expect(code((await authFrom(`127.0.0.${73 + i}`, 'erin@acme.test', `guess ${i}`)).reply)).toBe('535 5.7.8');
    }
    const before = await passwordChecks();
    // A stranger with the right password: refused, and after the full hash (a remembered answer
    // would come at once and tell the guesser it had guessed right).
    expect(code((await authFrom('127.0.0.80', 'erin@acme.test', 'erin password 1')).reply)).toBe('421 4.7.0');
    expect(await passwordChecks()).toEqual({ hashed: before.hashed + 1, remembered: before.remembered });
    // The owner's familiar address is not blocked and is answered from memory.
    expect((await authFrom(home, 'erin@acme.test', 'erin password 1')).reply).toMatch(/^235 /);
    expect(await passwordChecks()).toEqual({ hashed: before.hashed + 1, remembered: before.remembered + 1 });
  });

  it('refuses a remembered password once its user is deleted', async () => {
    const frank = await userWithOwnPassword('frank@acme.test', 'frank password 1');
    expect((await authFrom('127.0.0.81', 'frank@acme.test', 'frank password 1')).reply).toMatch(/^235 /);
    await e2e.node.stores.configStore.deleteUser(frank.id);
    expect(code((await authFrom('127.0.0.81', 'frank@acme.test', 'frank password 1')).reply)).toBe('535 5.7.8');
  });
});
