// webRoutes: the panel's static files next to the API, built on the first request when missing.
import { Hono } from 'hono';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { webRoutes } from '../../web/serve.js';

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
});
