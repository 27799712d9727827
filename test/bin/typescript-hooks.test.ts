// The module hooks through which `outpost` and its worker threads run the TypeScript
// (bin/typescript-hooks.mjs): the code they emit, the `.js` → `.ts` imports, the stack traces.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a JavaScript module without declarations
import { load, resolve } from '../../bin/typescript-hooks.mjs';

type Hook = (specifier: string, context: Record<string, unknown>, next: (...args: never[]) => unknown) => Promise<{ url?: string; source?: string; format?: string; shortCircuit?: boolean }>;
const loadHook = load as Hook;
const resolveHook = resolve as Hook;

const runFile = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const REGISTER = join(ROOT, 'bin', 'register-typescript.mjs');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'typescript', 'entry.ts');
const notCalled = () => {
  throw new Error('the next hook was called');
};

describe('TypeScript module hooks', () => {
  it('compile the ingress without wrapping its functions in name-keeping calls (a defineProperty per closure made)', async () => {
    const url = pathToFileURL(join(ROOT, 'smtp-ec2', 'ingress.ts')).href;
    const loaded = await loadHook(url, {}, notCalled);
    expect(loaded).toMatchObject({ format: 'module', shortCircuit: true });
    // The hooks of smtp-server's options are arrow functions assigned to names: keepNames wraps each.
    expect(loaded.source).toContain('onMailFrom: (address, session, callback) =>');
    expect(loaded.source).not.toMatch(/__name\(|__defProp\(/);
    // Types are gone, the code is JavaScript.
    expect(loaded.source).not.toContain('private readonly sessions');
  });

  it('resolve `./x.js` to `./x.ts` in the project only when there is no x.js', async () => {
    const parentURL = pathToFileURL(join(ROOT, 'smtp-ec2', 'ingress.ts')).href;
    const next = async (specifier: string) => ({ url: `next:${specifier}` });
    expect(await resolveHook('./session-guard.js', { parentURL }, next)).toEqual({ url: pathToFileURL(join(ROOT, 'smtp-ec2', 'session-guard.ts')).href, shortCircuit: true });
    // A .js file that exists is imported as it is, even with a .ts beside it; packages are left to Node.
    const fixture = pathToFileURL(FIXTURE).href;
    expect(await resolveHook('./both.js', { parentURL: fixture }, next)).toEqual({ url: 'next:./both.js' });
    expect(await resolveHook('./helper.js', { parentURL: fixture }, next)).toEqual({ url: pathToFileURL(join(ROOT, 'test', 'fixtures', 'typescript', 'helper.ts')).href, shortCircuit: true });
    expect(await resolveHook('smtp-server', { parentURL }, next)).toEqual({ url: 'next:smtp-server' });
  });

  it('leave JavaScript and packages to the next hook', async () => {
    const next = async (url: string) => ({ url, format: 'next' });
    const js = pathToFileURL(join(ROOT, 'bin', 'outpost.js')).href;
    expect(await loadHook(js, {}, next)).toEqual({ url: js, format: 'next' });
    const packaged = pathToFileURL(join(ROOT, 'node_modules', 'some-package', 'index.ts')).href;
    expect(await loadHook(packaged, {}, next)).toEqual({ url: packaged, format: 'next' });
  });

  it('run a TypeScript entry in a plain node, with stack traces that name the .ts line', async () => {
    const { stdout } = await runFile(process.execPath, ['--import', REGISTER, FIXTURE], { cwd: ROOT });
    expect(stdout.trim()).toBe('COMPILED!');
    const failed = await runFile(process.execPath, ['--import', REGISTER, FIXTURE, '--throw'], { cwd: ROOT }).then(
      () => undefined,
      (error: unknown) => error as { code: number; stderr: string },
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain('thrown on line 8 of entry.ts');
    expect(failed?.stderr).toMatch(/entry\.ts:8:\d+/);
  });

  it('read tsconfig.json as tsc does, comments and trailing commas included', async () => {
    // The hooks beside a tsconfig.json of their own, as they sit beside the project's.
    const dir = await mkdtemp(join(tmpdir(), 'outpost-hooks-'));
    try {
      await mkdir(join(dir, 'bin'));
      for (const file of ['typescript-hooks.mjs', 'register-typescript.mjs']) await copyFile(join(ROOT, 'bin', file), join(dir, 'bin', file));
      await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      await writeFile(join(dir, 'tsconfig.json'), '{\n  // the target of the emitted JavaScript\n  "compilerOptions": { "target": "ES2022", "strict": true, },\n}\n');
      await writeFile(join(dir, 'entry.ts'), 'class Greeting {\n  readonly text: string = "read";\n}\nconsole.log(new Greeting().text);\n');
      const { stdout } = await runFile(process.execPath, ['--import', join(dir, 'bin', 'register-typescript.mjs'), join(dir, 'entry.ts')], { cwd: dir });
      expect(stdout.trim()).toBe('read');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
