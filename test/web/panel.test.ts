// The control panel in a real browser (Debian's Chromium driven by playwright-core) against a real
// API over real SQLite stores, served together on a loopback port the way the single node serves
// them. Screenshots of every step go to test-artifacts/web/ for people to look at.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.mjs';
import { verifyPassword } from '../../core/identity.js';
import { settingKeys, userSettingsSchema } from '../../core/settings.js';
import { webRoutes } from '../../web/serve.js';
import { rawHttpGet, traversals } from '../helpers/raw-http.js';
import { ApiFixture, OPERATOR_TOKEN, seedTenant, type SeededTenant } from '../lambdas/api/api-fixture.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'web');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let fx: ApiFixture;
let server: ServerType;
let base: string;
let browser: BrowserContext;
let page: Page;
let distDir: string;
let profileDir: string;
let buildMs: number;
/** State carried from one step to the next, as a person would. */
const state: { tenantId?: string; key?: string; userId?: string } = {};
const pageErrors: string[] = [];

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  distDir = mkdtempSync(join(tmpdir(), 'outpost-web-dist-'));
  profileDir = mkdtempSync(join(tmpdir(), 'outpost-chromium-'));
  buildMs = (await buildWeb({ outDir: distDir })).ms;
  fx = new ApiFixture();
  // Wired as the single node does: the API app mounted at /, the panel's routes after it.
  const app = new Hono();
  app.route('/', fx.app);
  webRoutes(app, { distDir, buildIfMissing: false });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(10_000);
  page.on('dialog', (dialog) => void dialog.accept());
  // Script errors and CSP violations; failed API calls (a 401 on purpose) are the API's business.
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  fx?.close();
  rmSync(distDir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
});

async function apiGet(path: string, token = OPERATOR_TOKEN): Promise<any> {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status, `${path}: ${await response.clone().text()}`).toBe(200);
  return response.json();
}

describe('serving the panel', () => {
  it('builds in well under 10 seconds', () => {
    expect(buildMs).toBeLessThan(5_000);
  });

  it('serves files with their content types, index.html for panel paths, and leaves /v1 to the API', async () => {
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await index.text()).toContain('<main id="main"');
    expect((await fetch(`${base}/app.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${base}/styles.css`)).headers.get('content-type')).toMatch(/^text\/css/);
    const deep = await fetch(`${base}/users/some/where`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<main id="main"');
    expect((await fetch(`${base}/missing.js`)).status).toBe(404);
    const api = await fetch(`${base}/v1/no-such-route`);
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toMatch(/problem\+json/);
    // No way out of the dist folder, even encoded: raw requests (fetch would normalise the
    // path) at a file that exists.
    const port = Number(new URL(base).port);
    const hostConf = readFileSync('/etc/host.conf', 'utf8').trim();
    expect(hostConf.length, 'the target exists').toBeGreaterThan(0);
    for (const path of traversals('/etc/host.conf')) {
      const escape = await rawHttpGet(port, path);
      expect(escape.status, path).toBe(404);
      expect(escape.body, path).not.toContain(hostConf);
    }
  });
});

describe('the control panel in Chromium', () => {
  it('shows the API problem detail when the token is wrong', async () => {
    await page.goto(`${base}/`);
    await page.getByLabel('API key or operator token').fill('not-the-operator-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('the bearer token is not valid');
    await shot('01-login-error');
  });

  it('signs in with the operator token, creates a tenant and issues a tenant key shown once', async () => {
    await page.getByLabel('API key or operator token').fill(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Tenants' }).waitFor();
    await page.getByLabel('Tenant name').fill('acme');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByRole('cell', { name: 'acme', exact: true }).waitFor();
    const tenants = await apiGet('/v1/tenants');
    state.tenantId = tenants.items.find((t: { name: string }) => t.name === 'acme')?.id;
    expect(state.tenantId).toBeTruthy();

    await page.getByText('API keys').click();
    await page.getByRole('button', { name: 'Issue key' }).click();
    const secret = page.locator('.secret-value');
    await secret.waitFor();
    state.key = (await secret.textContent()) ?? '';
    expect(state.key).toMatch(/^opk_/);
    await shot('02-operator-tenant-and-key');
    // The key the panel showed works against the API.
    expect((await apiGet('/v1/me', state.key)).tenantId).toBe(state.tenantId);
  });

  it("lets the operator manage a tenant's users and defaults", async () => {
    await page.getByRole('button', { name: 'Manage tenant acme' }).click();
    await page.getByRole('heading', { name: 'Outgoing users' }).waitFor();
    expect(await page.locator('.who').textContent()).toBe('Operator: acme');
    await page.getByRole('link', { name: 'Defaults' }).click();
    await page.getByRole('heading', { name: 'Default settings' }).waitFor();
    await page.getByLabel('Maximum recipients per day').fill('750');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Tenant defaults saved.').waitFor();
    await shot('02b-operator-tenant-defaults');
    expect((await apiGet(`/v1/tenants/${state.tenantId}/settings`)).overrides).toEqual({ maxRecipientsPerDay: 750 });
  });

  it('signs in as the tenant, adds a domain and creates a mailbox user with a generated password', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or operator token').fill(state.key ?? '');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Outgoing users' }).waitFor();
    await expect.poll(() => page.locator('.who').textContent()).toContain('acme');

    await page.getByRole('link', { name: 'Domains' }).click();
    await page.getByLabel('Domain name').fill('acme.example');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByRole('cell', { name: 'acme.example', exact: true }).waitFor();
    // Added with a tenant key, it is pending; the operator vouches for it (panel-tenant-bounds.test.ts proves one by DNS).
    await page.getByText('pending', { exact: true }).waitFor();
    const vouched = await fetch(`${base}/v1/tenants/${state.tenantId}/domains`, { method: 'POST', headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'acme.example' }) });
    expect(vouched.status).toBe(201);

    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByLabel('Identity').fill('alice@acme.example');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('link', { name: 'alice@acme.example' }).waitFor();
    const password = (await page.locator('.secret-value').textContent()) ?? '';
    expect(password.length).toBeGreaterThanOrEqual(20);
    await shot('03-tenant-user-created');

    const users = await apiGet(`/v1/tenants/${state.tenantId}/users`, state.key);
    const alice = users.items.find((u: { identity: string }) => u.identity === 'alice@acme.example');
    expect(alice).toMatchObject({ kind: 'mailbox', hasPassword: true });
    state.userId = alice.id;
  });

  it('refuses a user of a domain the tenant does not have, with the API detail', async () => {
    await page.getByLabel('Identity').fill('bob@elsewhere.example');
    await page.getByRole('button', { name: 'Create user' }).click();
    await expect.poll(() => page.locator('form[aria-label="Create an outgoing user"] [role=alert]').textContent()).toContain("is not one of this tenant's domains");
  });

  it("changes the user's hourly limit, and the API reports the new value", async () => {
    await page.getByRole('link', { name: 'alice@acme.example' }).click();
    await page.getByRole('heading', { name: 'alice@acme.example' }).waitFor();
    // Every setting of the schema has a labelled field that is described by its explanation.
    const fields = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLInputElement>('form.settings input')).map((input) => ({
        key: input.name,
        label: input.labels?.[0]?.textContent ?? '',
        help: (input.getAttribute('aria-describedby') ?? '').split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' '),
      })),
    );
    expect(fields.map((f) => f.key).sort()).toEqual([...settingKeys].sort());
    for (const key of settingKeys) {
      const f = fields.find((item) => item.key === key);
      expect(f?.label, key).toContain(key);
      expect(f?.help, key).toContain(userSettingsSchema.shape[key].description ?? 'no description');
    }
    const hourly = page.getByLabel('Outgoing limit (mails per hour)');
    expect(await hourly.inputValue()).toBe('500');
    await hourly.fill('123');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings of alice@acme.example saved.').waitFor();
    await shot('04-user-settings-saved');
    const user = await apiGet(`/v1/tenants/${state.tenantId}/users/${state.userId}`, state.key);
    expect(user.overrides.mailsPerHour).toBe(123);
    expect(user.effective.mailsPerHour).toBe(123);
  });

  it('shows a validation problem of a setting as the API words it', async () => {
    await page.getByLabel('Require FROM domain').fill('not a domain!');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect.poll(() => page.locator('form.settings [role=alert]').textContent()).toContain('requiredFromDomains');
    expect(await page.getByLabel('Require FROM domain').getAttribute('aria-invalid')).toBe('true');
    await shot('05-settings-validation-error');
    const user = await apiGet(`/v1/tenants/${state.tenantId}/users/${state.userId}`, state.key);
    expect(user.overrides.requiredFromDomains).toBeUndefined();
  });

  it('shows a lock with its reasons and unlocks it with a reason', async () => {
    const outcome = await fx.deps.locks?.lockAfterAbuse(state.userId ?? '', [{ name: 'RATE_LIMIT_HOUR', evidence: { limit: 123 } }]);
    expect(outcome?.locked).toBe(true);
    await page.reload();
    await page.getByRole('heading', { name: 'alice@acme.example' }).waitFor();
    await page.getByText(/^locked/).first().waitFor();
    await expect.poll(() => page.locator('section[aria-labelledby=lock-h]').textContent()).toContain('RATE_LIMIT_HOUR');
    await shot('06-user-locked');

    await page.getByRole('link', { name: 'Locks' }).click();
    await page.getByRole('link', { name: 'alice@acme.example' }).waitFor();
    await shot('07-locked-users');
    await page.getByRole('link', { name: 'alice@acme.example' }).click();

    await page.getByLabel('Reason for unlocking').fill('customer fixed the script');
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.getByText('alice@acme.example unlocked.').waitFor();
    await page.getByRole('button', { name: 'Lock', exact: true }).waitFor();
    await expect.poll(() => page.locator('ol.history').textContent()).toContain('customer fixed the script');
    await shot('08-user-unlocked');

    const user = await apiGet(`/v1/tenants/${state.tenantId}/users/${state.userId}`, state.key);
    expect(user.lock.locked).toBe(false);
    const history = await apiGet(`/v1/tenants/${state.tenantId}/users/${state.userId}/lock-history`, state.key);
    expect(history.items[0]).toMatchObject({ kind: 'manual-unlock', reason: 'customer fixed the script' });
  });

  it('rotates the password and shows the new one once', async () => {
    await page.getByRole('button', { name: 'Rotate password' }).click();
    await page.getByText(/New password of alice@acme.example/).waitFor();
    const shown = (await page.locator('.secret-value').textContent()) ?? '';
    expect(shown.length).toBeGreaterThanOrEqual(20);
    // The password shown is the one now stored (hashed) for SMTP AUTH.
    const stored = await fx.deps.configStore.getUser(state.userId ?? '');
    expect(await verifyPassword(shown, stored?.passwordHash ?? null)).toBe(true);
  });

  it('has a label for every control, a name for every button, and landmarks', async () => {
    const problems = await page.evaluate(() => {
      const found: string[] = [];
      for (const control of Array.from(document.querySelectorAll('input, select, textarea'))) {
        if (control.getAttribute('aria-hidden') === 'true') continue;
        const labelled = (control as HTMLInputElement).labels?.length || control.getAttribute('aria-label');
        if (!labelled) found.push(`unlabelled ${control.tagName} ${control.getAttribute('name') ?? ''}`);
      }
      for (const button of Array.from(document.querySelectorAll('button'))) {
        if (!(button.textContent ?? '').trim() && !button.getAttribute('aria-label')) found.push('button without a name');
      }
      for (const landmark of ['header', 'nav', 'main', 'footer']) if (!document.querySelector(landmark)) found.push(`no <${landmark}>`);
      return found;
    });
    expect(problems).toEqual([]);
  });

  it('is usable on a phone: no sideways scrolling, the users table as cards', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('heading', { name: 'Outgoing users' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot('09-phone-users');
    await page.getByRole('link', { name: 'alice@acme.example' }).click();
    await page.getByRole('heading', { name: 'alice@acme.example' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await shot('10-phone-user');
    await page.screenshot({ path: join(ARTIFACTS, '10b-phone-user-first-screen.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
  });
});

describe('views of a tenant with data (DKIM, quarantine, message log, volume)', () => {
  let seeded: SeededTenant;

  beforeAll(async () => {
    seeded = await seedTenant(fx, 'globex', '198.51.100.0/24');
    await page.evaluate(() => sessionStorage.clear());
    await page.goto('about:blank');
    await page.goto(`${base}/#/users`);
    await page.getByLabel('API key or operator token').fill(seeded.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Outgoing users' }).waitFor();
  });

  it('shows today\'s volume in the users table and a chart per user', async () => {
    await expect.poll(() => page.getByRole('row', { name: /alice@globex\.example/ }).textContent()).toMatch(/2\s*\(3 recipients\)/);
    await page.getByRole('link', { name: 'alice@globex.example' }).click();
    const chart = page.locator('svg.chart');
    await chart.waitFor();
    expect(await chart.getAttribute('aria-label')).toMatch(/2 mails accepted/);
    expect(await page.locator('svg.chart rect.bar').count()).toBeGreaterThan(0);
    await shot('11-user-volume-chart');
  });

  it('filters the users table by kind', async () => {
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByRole('link', { name: 'alice@globex.example' }).waitFor();
    await page.getByLabel('Show').selectOption('ip');
    // The IP user's link is there before the filter too: wait for the table to change, not for it.
    await expect.poll(() => page.getByRole('link', { name: 'alice@globex.example' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: '198.51.100.0/24' }).count()).toBe(1);
  });

  it('lists DKIM keys with their DNS record and a copy button', async () => {
    await page.getByRole('link', { name: 'DKIM keys' }).click();
    await page.getByRole('heading', { name: 'DKIM keys' }).waitFor();
    expect(await page.getByRole('textbox', { name: 'Record name' }).inputValue()).toBe(`${seeded.selector}._domainkey.${seeded.domain}.`);
    expect(await page.getByRole('textbox', { name: 'TXT value' }).inputValue()).toMatch(/^v=DKIM1; k=ed25519; p=/);
    expect(await page.getByRole('button', { name: 'Copy txt value' }).count()).toBe(1);
    await shot('12-dkim');
  });

  it('shows a held message with its reasons and headers, never its body, and deletes it', async () => {
    await page.getByRole('link', { name: 'Quarantine' }).click();
    await page.getByRole('link', { name: 'Cheap pills' }).click();
    await page.getByRole('heading', { name: 'Cheap pills' }).waitFor();
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toContain('SPAM_SCORE');
    expect(text).toContain('dave@dest.example');
    expect(text).not.toContain('SECRET BODY TEXT');
    await shot('13-quarantined-message');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByText(`Message ${seeded.messageId} deleted.`).waitFor();
    const held = await apiGet(`/v1/tenants/${seeded.tenantId}/quarantine`, seeded.key);
    expect(held.items).toEqual([]);
  });

  it('searches the message log and opens a message with its events', async () => {
    await page.getByRole('link', { name: 'Message log' }).click();
    await page.getByLabel('Status').selectOption('delivered');
    await page.getByRole('button', { name: 'Search' }).click();
    // The list before the search shows both messages until the filtered one replaces it: wait for
    // the message that is not delivered to go (it never does if the filter is not applied).
    await page.getByRole('link', { name: seeded.messageId }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: seeded.deliveredId }).waitFor();
    expect(await page.getByRole('link', { name: seeded.messageId }).count()).toBe(0);
    await shot('14-message-log-search');
    await page.getByRole('link', { name: seeded.deliveredId }).click();
    await page.getByRole('heading', { name: 'Invoice' }).waitFor();
    expect(await page.locator('ol.history').textContent()).toContain('delivered');
  });

  it('signs the person out, with the reason, when the key is revoked during the session', async () => {
    const response = await fetch(`${base}/v1/tenants/${seeded.tenantId}/keys/${seeded.keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    expect(response.status).toBe(204);
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    await page.getByLabel('API key or operator token').waitFor();
    await expect.poll(() => page.locator('#notices').textContent()).toContain('Signed out: the bearer token is not valid');
    expect(await page.evaluate(() => sessionStorage.getItem('outpost.token'))).toBeNull();
    expect(await page.locator('main').textContent()).not.toContain('alice@globex.example');
    await shot('15-signed-out-after-revocation');
  });
});

describe('the whole session', () => {
  it('raised no script error and no Content-Security-Policy violation', () => {
    expect(pageErrors).toEqual([]);
  });
});
