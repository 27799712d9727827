#!/usr/bin/env node
// Builds the control panel (web/) into web/dist: one bundled, minified script, the stylesheet and
// index.html. Plain esbuild, no framework: the whole build takes well under a second, so the
// single node can run it at every start and the AWS deployment can upload web/dist as it is.
// `node scripts/build-web.mjs` builds; `buildWeb()` is what `npm start` and the tests call.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const webDir = join(root, 'web');
export const defaultOutDir = join(webDir, 'dist');

/**
 * Bundles web/src/main.ts (which embeds the settings and their explanations from
 * core/settings.ts) into `outDir`, with index.html and styles.css next to it.
 * @param {{ outDir?: string, minify?: boolean }} [options]
 * @returns {Promise<{ outDir: string, ms: number }>}
 */
export async function buildWeb(options = {}) {
  const settingsMeta = await evaluateSettingsMeta();
  const started = Date.now();
  const outDir = options.outDir ?? defaultOutDir;
  // Build into a fresh folder so a removed asset does not linger from an older build.
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [join(webDir, 'src', 'main.ts')],
    outfile: join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: options.minify ?? true,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
    tsconfig: join(webDir, 'tsconfig.json'),
    plugins: [embedSettingsMeta(settingsMeta)],
  });
  await copyFile(join(webDir, 'index.html'), join(outDir, 'index.html'));
  await copyFile(join(webDir, 'styles.css'), join(outDir, 'styles.css'));
  return { outDir, ms: Date.now() - started };
}

const settingsMetaFile = join(webDir, 'src', 'settings-meta.ts');

/**
 * web/src/settings-meta.ts derives the settings form (keys, explanations, defaults) from
 * core/settings.ts, which needs zod. Running it here, at build time, and shipping only its result
 * keeps zod (~400 KB) out of the browser bundle while the schema stays the one source.
 */
async function evaluateSettingsMeta() {
  const result = await build({
    entryPoints: [settingsMetaFile],
    bundle: true,
    format: 'esm',
    platform: 'node',
    write: false,
    logLevel: 'warning',
    tsconfig: join(webDir, 'tsconfig.json'),
  });
  const code = result.outputFiles[0]?.text ?? '';
  const module = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
  if (!Array.isArray(module.settingsMeta) || module.settingsMeta.length === 0) throw new Error('web/src/settings-meta.ts exported no settings');
  return module.settingsMeta;
}

/** Replaces settings-meta.ts in the browser bundle by its evaluated value. */
function embedSettingsMeta(settingsMeta) {
  return {
    name: 'embed-settings-meta',
    setup(pluginBuild) {
      pluginBuild.onLoad({ filter: /[\\/]web[\\/]src[\\/]settings-meta\.ts$/ }, () => ({
        contents: `export const settingsMeta = ${JSON.stringify(settingsMeta)};`,
        loader: 'js',
      }));
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  buildWeb()
    .then(({ outDir, ms }) => process.stderr.write(`[build-web] built ${outDir} in ${ms} ms\n`))
    .catch((error) => {
      process.stderr.write(`[build-web] failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    });
}
