// Serves the control panel (web/dist) at `/` of the single node's HTTP port, next to the API.
// Every GET that is not an API path gets a file of web/dist, or index.html (the panel routes by
// URL hash, so any other path is the panel too). When web/dist is missing — a checkout where the
// prestart build did not run — it is built once on the first request.
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Context, Hono } from 'hono';
import { buildWeb, defaultOutDir } from '../scripts/build-web.mjs';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Paths the panel must never answer: they belong to the API and the node's own endpoints. */
const NOT_PANEL = /^\/(?:v1(?:\/|$)|healthz$|metrics$)/;

// The panel talks only to its own origin; nothing is framed, inline scripts are not needed.
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

export interface WebRoutesOptions {
  /** Where the built panel is; default web/dist. */
  distDir?: string;
  /** Build the panel when `distDir` has no index.html (default true). */
  buildIfMissing?: boolean;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Adds the panel's routes to `app` (register them after the API's routes). */
export function webRoutes(app: Hono, options: WebRoutesOptions = {}): Hono {
  const root = resolve(options.distDir ?? defaultOutDir);
  let ready: Promise<void> | undefined;
  const ensureBuilt = (): Promise<void> => {
    ready ??= (async () => {
      if (await isFile(join(root, 'index.html'))) return;
      if (options.buildIfMissing === false) throw new Error(`the control panel is not built in ${root}; run: node scripts/build-web.mjs`);
      await buildWeb({ outDir: root });
    })().catch((error: unknown) => {
      ready = undefined; // try again on the next request
      throw error;
    });
    return ready;
  };

  const servePanel = async (c: Context, next: () => Promise<void>): Promise<Response | void> => {
    const path = decodeURIComponentSafe(c.req.path);
    if (path === undefined || NOT_PANEL.test(path)) return next();
    try {
      await ensureBuilt();
    } catch (error: unknown) {
      return c.text(`The control panel could not be built: ${error instanceof Error ? error.message : String(error)}`, 503);
    }
    // A path with an extension is an asset: served from the folder or 404 (a browser would
    // otherwise parse index.html as a script). Any other path is a panel page: index.html.
    let file = join(root, 'index.html');
    if (extname(path) !== '') {
      // normalize + prefix check: "/../" cannot leave the dist folder.
      const wanted = normalize(join(root, path));
      const inRoot = wanted.startsWith(root + sep);
      if (!inRoot || !(await isFile(wanted))) return c.text('not found', 404, SECURITY_HEADERS);
      file = wanted;
    }
    const body = await readFile(file);
    const type = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
    // index.html is never cached so a new build is picked up; assets are revalidated by the browser.
    const cache = file.endsWith('index.html') ? 'no-store' : 'no-cache';
    if (c.req.method === 'HEAD') return c.body(null, 200, { 'Content-Type': type, 'Cache-Control': cache, ...SECURITY_HEADERS });
    return c.body(body, 200, { 'Content-Type': type, 'Cache-Control': cache, ...SECURITY_HEADERS });
  };

  app.on(['GET', 'HEAD'], '*', servePanel);
  return app;
}

function decodeURIComponentSafe(path: string): string | undefined {
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}
