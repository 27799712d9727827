// Module hooks that run Outpost's TypeScript on Node 20, registered by bin/register-typescript.mjs.
// Each .ts file is compiled when it is first imported, one file at a time, by esbuild (the same
// compiler tsx uses), with the project's tsconfig.json.
//
// Why not tsx, which the scripts, benchmarks and tests still use: tsx compiles with esbuild's
// `keepNames`, which wraps every named function expression and arrow function in a call that
// defines its `name` property (`__name(fn, "name")`, an Object.defineProperty) each time one is
// created. The relay creates such closures for every command of every session (the callbacks of
// the hooks, the checks' helpers): 11–13 % of the ingress's own CPU per message in
// `npm run bench:ingress-work` (bench/README.md, "Fourteenth session"). Without minification the
// names are there anyway.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

// The project's own tsconfig.json, as its text: esbuild parses it as tsc does (comments and
// trailing commas allowed) and reads the options that change the JavaScript it emits (target
// ES2022: class fields are defined, as tsc would emit them).
const TSCONFIG = readFileSync(new URL('../tsconfig.json', import.meta.url), 'utf8');

/** A file of the project itself, not of a package. */
function isOwn(url) {
  return typeof url === 'string' && url.startsWith('file:') && !url.includes('/node_modules/');
}

export async function resolve(specifier, context, nextResolve) {
  // The sources import each other as `./x.js` (NodeNext): that is the `./x.ts` next to it.
  if (specifier.endsWith('.js') && (specifier.startsWith('./') || specifier.startsWith('../')) && isOwn(context.parentURL)) {
    const url = new URL(specifier, context.parentURL);
    if (!existsSync(url)) {
      const typescript = new URL(`${url.href.slice(0, -'.js'.length)}.ts`);
      if (existsSync(typescript)) return { url: typescript.href, shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.endsWith('.ts') || !isOwn(url)) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const source = await readFile(path, 'utf8');
  // An inline source map: with source maps enabled (register-typescript.mjs), stack traces name the .ts lines.
  const { code } = await transform(source, { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: path, tsconfigRaw: TSCONFIG });
  return { format: 'module', source: code, shortCircuit: true };
}
