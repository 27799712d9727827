// webRoutes: the panel's static files next to the API, built on the first request when missing.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { webRoutes } from '../../web/serve.js';
import { rawHttpGet, traversals } from '../helpers/raw-http.js';

const parent = mkdtempSync(join(tmpdir(), 'outpost-web-serve-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe('webRoutes', () => {
  it('builds the panel on the first request when its folder is missing, then serves it', async () => {
    const distDir = join(parent, 'dist');
    const app = webRoutes(new Hono(), { distDir });
    expect(existsSync(distDir)).toBe(false);
    const index = await app.request('/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(existsSync(join(distDir, 'app.js'))).toBe(true);
    const script = await app.request('/app.js');
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    // The settings and their explanations are embedded in the bundle, not fetched.
    expect(await script.text()).toContain('Out Going Limit: mails per hour');
  });

  it('answers 503 with what to do when the panel is not built and building is off', async () => {
    const app = webRoutes(new Hono(), { distDir: join(parent, 'absent'), buildIfMissing: false });
    const response = await app.request('/');
    expect(response.status).toBe(503);
    expect(await response.text()).toContain('node scripts/build-web.mjs');
  });

  it('leaves API paths, /healthz and /metrics to the routes registered before it', async () => {
    const app = new Hono();
    app.get('/healthz', (c) => c.text('ok'));
    webRoutes(app, { distDir: join(parent, 'dist') });
    expect(await (await app.request('/healthz')).text()).toBe('ok');
    expect((await app.request('/v1/anything')).status).toBe(404);
    expect((await app.request('/metrics')).status).toBe(404);
  });

  it('serves index.html for panel paths, 404 for a missing asset, nothing outside the folder', async () => {
    const app = webRoutes(new Hono(), { distDir: join(parent, 'dist') });
    expect(await (await app.request('/users/123')).text()).toContain('<main id="main"');
    expect((await app.request('/nothing-here.js')).status).toBe(404);
    for (const path of ['/../../package.json', '/%2e%2e/%2e%2e/package.json', '/..%2f..%2fpackage.json']) {
      const response = await app.request(path);
      expect(await response.text(), path).not.toContain('"dependencies"');
    }
  });

  it('serves no file outside its folder to raw requests with encoded traversal (a file next to it, /etc/host.conf)', async () => {
    const distDir = join(parent, 'dist');
    writeFileSync(join(parent, 'beside.txt'), 'SECRET NEXT TO THE PANEL');
    expect(readFileSync('/etc/host.conf', 'utf8').length, 'the target exists').toBeGreaterThan(0);
    const server = await new Promise<ServerType>((resolve) => {
      const started: ServerType = serve({ fetch: webRoutes(new Hono(), { distDir }).fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
    });
    try {
      const port = (server.address() as AddressInfo).port;
      const served = await rawHttpGet(port, '/app.js');
      expect(served.status, 'the server serves files').toBe(200);
      // The panel's own files carry the headers that keep it out of frames and sniffing.
      expect(served.head).toMatch(/^X-Content-Type-Options: nosniff$/im);
      expect(served.head).toMatch(/^Referrer-Policy: no-referrer$/im);
      expect(served.head).toMatch(/^X-Frame-Options: DENY$/im);
      expect(served.head).toMatch(/^Content-Security-Policy: default-src 'self'.*frame-ancestors 'none'/im);
      for (const path of ['/..%2fbeside.txt', '/assets%2f..%2f..%2fbeside.txt', ...traversals(join(parent, 'beside.txt')), ...traversals('/etc/host.conf')]) {
        const response = await rawHttpGet(port, path);
        expect(response.status, path).toBe(404);
        expect(response.body, path).not.toContain('SECRET NEXT TO THE PANEL');
        expect(response.body, path).not.toContain(readFileSync('/etc/host.conf', 'utf8').trim());
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
