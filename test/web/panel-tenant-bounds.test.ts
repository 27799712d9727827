// The control panel on a tenant's boundaries, in Chromium against the real API: a domain added with
// the tenant key is shown pending with the TXT record to publish, Verify looks the record up on a
// loopback DNS server, the operator's ceilings are shown and a value beyond one is refused with
// the API's detail, and the audit log lists what happened. Screenshots go to test-artifacts/web/.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../adapters/local/dns.js';
import { buildWeb } from '../../scripts/build-web.mjs';
import { webRoutes } from '../../web/serve.js';
import { startDnsServer, txt, type DnsServer } from '../helpers/dns-server.js';
import { ApiFixture, OPERATOR_TOKEN, seedTenant, type SeededTenant } from '../lambdas/api/api-fixture.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'web');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let dns: DnsServer;
let fx: ApiFixture;
let server: ServerType;
let base: string;
let browser: BrowserContext;
let page: Page;
let distDir: string;
let profileDir: string;
let acme: SeededTenant;
const pageErrors: string[] = [];

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  distDir = mkdtempSync(join(tmpdir(), 'outpost-web-dist-'));
  profileDir = mkdtempSync(join(tmpdir(), 'outpost-chromium-'));
  await buildWeb({ outDir: distDir });
  dns = await startDnsServer({});
  fx = new ApiFixture({ resolver: createResolver({ servers: [dns.address], timeoutMs: 1000 }) });
  acme = await seedTenant(fx, 'acme', '203.0.114.0/28');
  await fx.call('PUT', `/v1/tenants/${acme.tenantId}/ceilings`, { body: { mailsPerHour: 300, blockSpam: true } });
  const app = new Hono();
  app.route('/', fx.app);
  webRoutes(app, { distDir, buildIfMissing: false });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launchPersistentContext(profileDir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(10_000);
  page.on('dialog', (dialog) => void dialog.accept());
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${base}/`);
  await page.getByLabel('API key or operator token').fill(acme.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Outgoing users' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  fx?.close();
  await dns?.stop();
  rmSync(distDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
});

describe('the panel with a tenant key', () => {
  it('shows a domain it adds as pending with the TXT record, and verifies it once the record is published', async () => {
    await page.getByRole('link', { name: 'Domains' }).click();
    await page.getByLabel('Domain name').fill('news.acme-corp.example');
    await page.getByRole('button', { name: 'Add domain' }).click();
    const row = page.getByRole('row', { name: /news\.acme-corp\.example/ });
    await row.getByText('pending', { exact: true }).waitFor();
    const record = (await row.getByLabel('TXT record for news.acme-corp.example').textContent()) ?? '';
    expect(record).toMatch(/^_outpost-verify\.news\.acme-corp\.example\. IN TXT "outpost-verify=[0-9a-f]{32}"$/);
    await shot('21-domain-pending-record');

    // Not published yet: the API's detail is shown and the domain stays pending.
    await row.getByRole('button', { name: 'Verify news.acme-corp.example' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('not proven yet');
    expect(await row.getByText('pending', { exact: true }).count()).toBe(1);

    const value = /"(.*)"$/.exec(record)?.[1] ?? '';
    dns.zone['_outpost-verify.news.acme-corp.example'] = [txt(value)];
    await row.getByRole('button', { name: 'Verify news.acme-corp.example' }).click();
    await page.getByRole('row', { name: /news\.acme-corp\.example/ }).getByText('verified', { exact: true }).waitFor();
    expect((await fx.deps.configStore.getDomain('news.acme-corp.example'))?.tenantId).toBe(acme.tenantId);
    await shot('22-domain-verified');
  });

  it("shows the operator's ceilings and refuses a default beyond one with the API's detail", async () => {
    await page.getByRole('link', { name: 'Defaults' }).click();
    const card = page.getByRole('region', { name: 'Ceilings set by the operator' }).or(page.locator('[aria-label="Ceilings set by the operator"]'));
    await card.first().waitFor();
    expect(await card.first().textContent()).toMatch(/mailsPerHour.*at most 300.*blockSpam.*forced on/s);
    await page.getByLabel('Outgoing limit (mails per hour)').fill('0');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('form.settings [role=alert]').textContent()).toContain("above the operator's ceiling mailsPerHour=300");
    expect((await fx.call('GET', `/v1/tenants/${acme.tenantId}/settings`)).body.overrides.mailsPerHour).toBeUndefined();
    await shot('23-ceilings');
  });

  it('lists what happened in the audit log', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const verified = page.getByRole('row', { name: /domain\.verified/ });
    await verified.waitFor();
    expect(await verified.textContent()).toContain(`tenant-key:${acme.keyId}`);
    expect(await page.getByRole('row', { name: /ceilings\.changed/ }).textContent()).toContain('operator');
    await shot('24-audit-log');
    expect(pageErrors).toEqual([]);
  });
});

describe('the panel with the operator token', () => {
  it("lists every tenant's latest changes on the Tenants page", async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or operator token').fill(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Recent changes (audit log)').click();
    expect(await page.getByRole('row', { name: /domain\.verified/ }).textContent()).toMatch(/acme.*tenant-key:/);
    expect(pageErrors).toEqual([]);
  });
});
