// The operator CLI, run as a process the way operators script it.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config.js';
import { verifyPassword } from '../../core/identity.js';
import { openLocalStores } from '../../bin/local-stores.js';
import { outpost, relayEnv, relayPorts } from '../helpers/relay-process.js';

const runFile = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'outpost.js');

let dataDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'outpost-cli-'));
  env = relayEnv(dataDir, await relayPorts());
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Runs the CLI expecting failure; resolves with exit code and stderr. */
async function failing(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await runFile(process.execPath, [BIN, ...args], { env });
  } catch (error: unknown) {
    const failure = error as { code?: number; stderr?: string };
    return { code: failure.code ?? -1, stderr: failure.stderr ?? '' };
  }
  throw new Error(`outpost ${args.join(' ')} succeeded`);
}

function stores() {
  return openLocalStores(parseConfig({ dataDir }));
}

describe('outpost CLI', () => {
  it('creates a tenant, a domain and users of the three kinds, and lists them', async () => {
    expect(await outpost(env, ['tenant', 'add', 'acme'])).toMatch(/tenant acme created/);
    expect(await outpost(env, ['domain', 'add', '--tenant', 'acme', 'Acme.Test'])).toMatch(/domain acme\.test added/);
    const generated = await outpost(env, ['user', 'add', '--tenant', 'acme', 'alice@acme.test']);
    const password = /password: (\S+)/.exec(generated)?.[1] ?? '';
    expect(password.length).toBeGreaterThanOrEqual(20);
    await outpost(env, ['user', 'add', '--tenant', 'acme', 'acme.test', '--password-stdin'], 'from stdin 123\n');
    await outpost(env, ['user', 'add', '--tenant', 'acme', '192.0.2.0/24']);
    const list = await outpost(env, ['user', 'list', '--tenant', 'acme']);
    expect(list).toMatch(/alice@acme\.test\s+mailbox\s+acme/);
    expect(list).toMatch(/acme\.test\s+domain\s+acme/);
    expect(list).toMatch(/192\.0\.2\.0\/24\s+ip\s+acme/);

    const s = stores();
    try {
      const alice = await s.configStore.findUserByLogin('alice@acme.test');
      const domainUser = await s.configStore.findUserByLogin('acme.test');
      // Stored as slow salted hashes, never in clear.
      expect(alice?.passwordHash).toMatch(/^scrypt\$/);
      expect(await verifyPassword(password, alice?.passwordHash ?? null)).toBe(true);
      expect(await verifyPassword('from stdin 123', domainUser?.passwordHash ?? null)).toBe(true);
    } finally {
      s.close();
    }
  });

  it('refuses users outside the tenant’s domains, unknown tenants, bad identities and unknown commands', async () => {
    expect(await failing(['user', 'add', '--tenant', 'acme', 'bob@other.test'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/not a domain of tenant acme/) });
    expect(await failing(['user', 'add', '--tenant', 'nope', 'bob@acme.test'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/no tenant named "nope"/) });
    expect(await failing(['user', 'add', '--tenant', 'acme', '300.1.1.1'])).toMatchObject({ code: 1 });
    expect(await failing(['user', 'add', '--tenant', 'acme', 'alice@acme.test'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/already exists/) });
    expect(await failing(['user', 'add', '--tenant', 'acme', '10.0.0.0/8'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/wider than \/16.*--allow-wide/) });
    await outpost(env, ['tenant', 'add', 'globex']);
    expect(await failing(['user', 'add', '--tenant', 'globex', '192.0.2.7'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/192\.0\.2\.7\/32 overlaps 192\.0\.2\.0\/24 of another tenant/) });
    expect(await failing(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command/) });
    expect(await failing(['user', 'set', '--tenant', 'acme', 'alice@acme.test', 'mailsPerHour=lots'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/whole number/) });
    expect(await failing(['user', 'set', '--tenant', 'acme', 'alice@acme.test', 'colour=blue'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/unknown setting "colour"/) });
  });

  it('shows effective settings as JSON: tenant defaults apply, user overrides win, KEY= clears', async () => {
    await outpost(env, ['tenant', 'set', 'acme', 'mailsPerHour=200', 'requiredFromDomains=acme.test,news.acme.test']);
    let shown = JSON.parse(await outpost(env, ['user', 'show', '--tenant', 'acme', 'alice@acme.test'])) as { settings: Record<string, unknown> };
    expect(shown.settings).toMatchObject({ mailsPerHour: 200, requiredFromDomains: ['acme.test', 'news.acme.test'] });
    await outpost(env, ['user', 'set', '--tenant', 'acme', 'alice@acme.test', 'mailsPerHour=7', 'autoLock=off']);
    shown = JSON.parse(await outpost(env, ['user', 'show', '--tenant', 'acme', 'alice@acme.test'])) as { settings: Record<string, unknown> };
    expect(shown.settings).toMatchObject({ mailsPerHour: 7, autoLock: false, requiredFromDomains: ['acme.test', 'news.acme.test'] });
    await outpost(env, ['user', 'set', '--tenant', 'acme', 'alice@acme.test', 'mailsPerHour=']);
    shown = JSON.parse(await outpost(env, ['user', 'show', '--tenant', 'acme', 'alice@acme.test'])) as { settings: Record<string, unknown> };
    expect(shown.settings).toMatchObject({ mailsPerHour: 200, autoLock: false });
  });

  it('lists locks with reasons and unlocks', async () => {
    const s = stores();
    try {
      const alice = await s.configStore.findUserByLogin('alice@acme.test');
      if (!alice) throw new Error('no alice');
      await outpost(env, ['user', 'set', '--tenant', 'acme', 'alice@acme.test', 'autoLock=on']);
      const { makeUserLocks } = await import('../../core/policy/index.js');
      const locks = makeUserLocks({ store: s.lockStore, counters: s.counters, clock: s.clock, configStore: s.configStore, config: parseConfig({ dataDir }) });
      await locks.lockAfterAbuse(alice.id, [{ name: 'SPAM_VERDICT', evidence: { score: 12 } }]);
    } finally {
      s.close();
    }
    expect(await outpost(env, ['lock', 'list'])).toMatch(/alice@acme\.test\s+acme\s+\S+\s+\S+\s+0\s+SPAM_VERDICT/);
    expect(await outpost(env, ['unlock', '--tenant', 'acme', 'alice@acme.test', '--reason', 'customer cleaned up'])).toMatch(/unlocked/);
    expect(await outpost(env, ['lock', 'list'])).not.toMatch(/alice@acme\.test/);
    const history = await outpost(env, ['lock', 'history', '--tenant', 'acme', 'alice@acme.test']);
    expect(history).toMatch(/lock\s+.*SPAM_VERDICT/);
    expect(history).toMatch(/manual-unlock\s+operator customer cleaned up/);
  });

  it('manages DKIM keys and prints the DNS record to publish', async () => {
    const added = await outpost(env, ['dkim', 'add', '--tenant', 'acme', 'acme.test', '--selector', 'mail1']);
    expect(added).toMatch(/^mail1\._domainkey\.acme\.test\. IN TXT "v=DKIM1; k=rsa; p=/m);
    const ed = await outpost(env, ['dkim', 'add', '--tenant', 'acme', 'acme.test', '--selector', 'ed1', '--algorithm', 'ed25519']);
    expect(ed).toMatch(/k=ed25519; p=[A-Za-z0-9+/]{43}=/);
    const list = await outpost(env, ['dkim', 'list', '--tenant', 'acme']);
    expect(list).toMatch(/acme\.test\s+mail1\s+rsa\s+yes/);
    expect(list).toMatch(/acme\.test\s+ed1\s+ed25519/);
    expect(list).not.toMatch(/PRIVATE/);
    await outpost(env, ['dkim', 'remove', '--tenant', 'acme', 'acme.test', '--selector', 'ed1']);
    expect(await outpost(env, ['dkim', 'list', '--tenant', 'acme'])).not.toMatch(/ed1/);
  });

  it('manages the suppression list', async () => {
    await outpost(env, ['suppression', 'add', '--tenant', 'acme', 'gone@Example.ORG', '--reason', 'asked to stop']);
    expect(await outpost(env, ['suppression', 'list', '--tenant', 'acme'])).toMatch(/gone@example\.org\s+manual\s+\S+\s+never\s+asked to stop/);
    await outpost(env, ['suppression', 'remove', '--tenant', 'acme', 'gone@example.org']);
    expect(await outpost(env, ['suppression', 'list', '--tenant', 'acme'])).not.toMatch(/gone@/);
    expect(await failing(['suppression', 'remove', '--tenant', 'acme', 'gone@example.org'])).toMatchObject({ code: 1 });
  });

  it('rotates a password and prints the new one once', async () => {
    const out = await outpost(env, ['user', 'passwd', '--tenant', 'acme', 'alice@acme.test']);
    const password = /password: (\S+)/.exec(out)?.[1] ?? '';
    const s = stores();
    try {
      const alice = await s.configStore.findUserByLogin('alice@acme.test');
      expect(await verifyPassword(password, alice?.passwordHash ?? null)).toBe(true);
    } finally {
      s.close();
    }
  });

  it('refuses to remove a domain while users of it exist, as the API does (exit 1, the same words); then removes it with its DKIM keys', async () => {
    await outpost(env, ['tenant', 'add', 'retail']);
    await outpost(env, ['domain', 'add', '--tenant', 'retail', 'shop.test']);
    await outpost(env, ['user', 'add', '--tenant', 'retail', 'bob@shop.test']);
    await outpost(env, ['dkim', 'add', '--tenant', 'retail', 'shop.test', '--selector', 'shop1', '--algorithm', 'ed25519']);
    expect(await failing(['domain', 'remove', '--tenant', 'retail', 'shop.test'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/1 user\(s\) of shop\.test exist \(e\.g\. bob@shop\.test\); delete them first/),
    });
    const before = stores();
    try {
      expect(await before.configStore.getDomain('shop.test')).toBeDefined();
      expect((await before.dkimKeys.list('shop.test')).map((key) => key.selector)).toEqual(['shop1']);
    } finally {
      before.close();
    }

    await outpost(env, ['user', 'remove', '--tenant', 'retail', 'bob@shop.test']);
    expect(await outpost(env, ['domain', 'remove', '--tenant', 'retail', 'shop.test'])).toMatch(/domain shop\.test removed from tenant retail/);
    const s = stores();
    try {
      expect(await s.configStore.getDomain('shop.test')).toBeUndefined();
      // The domain leaves with its DKIM keys: whoever adds it next starts clean.
      expect(await s.dkimKeys.list('shop.test')).toEqual([]);
      const audit = await s.audit.list({ limit: 50 });
      expect(audit.find((entry) => entry.action === 'domain.removed' && entry.target === 'shop.test')).toMatchObject({ actor: 'operator (cli)' });
    } finally {
      s.close();
    }
  }, 240_000);

  it('withdraws a pending claim with domain remove, and says so for a domain the tenant does not have', async () => {
    const s = stores();
    try {
      const retail = await s.configStore.getTenantByName('retail');
      await s.configStore.claimDomain(retail?.id ?? '', 'claimed.test', 'a'.repeat(32));
    } finally {
      s.close();
    }
    expect(await outpost(env, ['domain', 'remove', '--tenant', 'retail', 'claimed.test'])).toMatch(/pending domain claimed\.test withdrawn/);
    expect(await failing(['domain', 'remove', '--tenant', 'retail', 'claimed.test'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/has no domain claimed\.test/) });
  }, 120_000);
});
