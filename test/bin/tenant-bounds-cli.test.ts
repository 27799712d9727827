// The operator's CLI on tenant boundaries, run as a process: domains it adds are verified (and drop
// pending claims), public suffixes are refused, ceilings are set with `tenant ceiling`, `config
// check` lists IP users wider than a tenant may make, and every change lands in the audit log.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStores } from '../../bin/local-stores.js';
import { parseConfig } from '../../core/config.js';
import { newVerificationToken } from '../../core/domains.js';
import { outpost, relayEnv, relayPorts } from '../helpers/relay-process.js';

const runFile = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'outpost.js');

let dataDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'outpost-cli-bounds-'));
  env = relayEnv(dataDir, await relayPorts());
  await outpost(env, ['tenant', 'add', 'acme']);
  await outpost(env, ['tenant', 'add', 'globex']);
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function failing(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await runFile(process.execPath, [BIN, ...args], { env });
  } catch (error: unknown) {
    const failure = error as { code?: number; stderr?: string };
    return { code: failure.code ?? -1, stderr: failure.stderr ?? '' };
  }
  throw new Error(`outpost ${args.join(' ')} succeeded`);
}

async function withStores<T>(fn: (stores: ReturnType<typeof openLocalStores>) => Promise<T>): Promise<T> {
  const stores = openLocalStores(parseConfig({ dataDir }));
  try {
    return await fn(stores);
  } finally {
    stores.close();
  }
}

describe('domain add (operator)', () => {
  it('adds a verified domain, dropping the pending claims of tenants, and refuses public suffixes', async () => {
    await withStores(async (s) => {
      const globex = await s.configStore.getTenantByName('globex');
      await s.configStore.claimDomain(globex?.id ?? '', 'acme.test', newVerificationToken());
    });
    expect(await outpost(env, ['domain', 'list'])).toMatch(/acme\.test\s+globex\s+pending\s+\S+\s+_outpost-verify\.acme\.test TXT "outpost-verify=[0-9a-f]{32}"/);
    expect(await outpost(env, ['domain', 'add', '--tenant', 'acme', 'acme.test'])).toMatch(/domain acme\.test added/);
    const listed = await outpost(env, ['domain', 'list']);
    expect(listed).toMatch(/acme\.test\s+acme\s+verified/);
    expect(listed).not.toMatch(/pending/);
    for (const suffix of ['co.uk', 'github.io']) {
      expect(await failing(['domain', 'add', '--tenant', 'acme', suffix])).toMatchObject({ code: 1, stderr: expect.stringMatching(/is a public suffix/) });
    }
    expect(await outpost(env, ['domain', 'list'])).not.toMatch(/co\.uk|github\.io/);
  });
});

describe('tenant ceiling', () => {
  it('sets and removes ceilings; the effective settings are clamped to them', async () => {
    await outpost(env, ['tenant', 'set', 'acme', 'mailsPerHour=0', 'blockSpam=off']);
    const set = JSON.parse(await outpost(env, ['tenant', 'ceiling', 'acme', 'mailsPerHour=300', 'blockSpam=true'])) as Record<string, unknown>;
    expect(set).toEqual({ mailsPerHour: 300, blockSpam: true });
    const shown = JSON.parse(await outpost(env, ['tenant', 'show', 'acme'])) as { ceilings: unknown; effectiveDefaults: Record<string, unknown> };
    expect(shown.ceilings).toEqual({ mailsPerHour: 300, blockSpam: true });
    expect(shown.effectiveDefaults).toMatchObject({ mailsPerHour: 300, blockSpam: true });
    expect(await failing(['tenant', 'ceiling', 'acme', 'colour=3'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/no ceiling "colour"/) });
    expect(await failing(['tenant', 'ceiling', 'acme', 'blockSpam=maybe'])).toMatchObject({ code: 2 });
    expect(JSON.parse(await outpost(env, ['tenant', 'ceiling', 'acme', 'blockSpam=']))).toEqual({ mailsPerHour: 300 });
  });
});

describe('config check', () => {
  it('lists IP users wider than a tenant may make as warnings, and they keep existing', async () => {
    await outpost(env, ['user', 'add', '--tenant', 'acme', '10.0.0.0/8', '--allow-wide']);
    await outpost(env, ['user', 'add', '--tenant', 'acme', '203.0.114.0/24']);
    const checked = JSON.parse(await outpost(env, ['config', 'check'])) as { warnings: string[] };
    expect(checked.warnings).toHaveLength(1);
    expect(checked.warnings[0]).toMatch(/IP user 10\.0\.0\.0\/8 of tenant acme .*wider than \/24/);
    expect(await outpost(env, ['user', 'list', '--tenant', 'acme'])).toMatch(/10\.0\.0\.0\/8\s+ip/);
  });
});

describe('the audit log', () => {
  it('records what the operator did with the CLI', async () => {
    const entries = await withStores(async (s) => s.audit.list({ limit: 100 }));
    expect(entries.every((e) => e.actor === 'operator (cli)')).toBe(true);
    expect(entries.map((e) => `${e.action} ${e.target}`)).toEqual(
      expect.arrayContaining(['tenant.created acme', 'domain.added acme.test', 'settings.changed tenant', 'ceilings.changed tenant', 'user.created 10.0.0.0/8']),
    );
  });
});
