// Strict tenant isolation, walked over the route table itself: a route added later is walked too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allRoutes } from '../../../lambdas/api/app.js';
import type { Route } from '../../../lambdas/api/route.js';
import { ApiFixture, seedTenant, type SeededTenant } from './api-fixture.js';

/** A valid body for every route that takes one, so that validation is never what refuses. */
const sampleBodies: Record<string, unknown> = {
  createTenant: { name: 'intruder' },
  updateTenant: { suspended: true },
  createApiKey: { name: 'stolen' },
  updateTenantSettings: { mailsPerHour: 1 },
  addDomain: { name: 'intruder.example' },
  putCeilings: { mailsPerHour: 1 },
  createUser: { identity: 'mallory@a-corp.example', password: 'longenough1' },
  updateUserSettings: { mailsPerHour: 1 },
  setUserPassword: { password: 'attacker-password' },
  lockUser: { reason: 'sabotage' },
  unlockUser: { reason: 'sabotage' },
  createDkimKey: { selector: 'evil', algorithm: 'ed25519' },
  rotateDkimKey: { algorithm: 'ed25519' },
  addSuppression: { address: 'x@dest.example' },
};

function pathFor(route: Route, ids: Record<string, string>): string {
  return route.path.replace(/\{(\w+)\}/g, (_all, name: string) => {
    const value = ids[name];
    if (value === undefined) throw new Error(`no id for {${name}} in ${route.path}: add it to the isolation test`);
    return encodeURIComponent(value);
  });
}

const idsOf = (t: SeededTenant): Record<string, string> => ({
  tenantId: t.tenantId,
  userId: t.mailboxUserId,
  keyId: t.keyId,
  domain: t.domain,
  messageId: t.messageId,
  selector: t.selector,
  address: t.suppressed,
});

describe('tenant isolation', () => {
  const fx = new ApiFixture();
  let a: SeededTenant;
  let b: SeededTenant;
  let before: Record<string, unknown>;

  const snapshotOfA = async () => ({
    tenant: (await fx.call('GET', `/v1/tenants/${a.tenantId}`)).body,
    users: (await fx.call('GET', `/v1/tenants/${a.tenantId}/users`)).body,
    domains: (await fx.call('GET', `/v1/tenants/${a.tenantId}/domains`)).body,
    settings: (await fx.call('GET', `/v1/tenants/${a.tenantId}/settings`)).body,
    keys: (await fx.call('GET', `/v1/tenants/${a.tenantId}/keys`)).body.items.map((key: { id: string }) => key.id),
    locks: (await fx.call('GET', `/v1/tenants/${a.tenantId}/locks`)).body,
    history: (await fx.call('GET', `/v1/tenants/${a.tenantId}/users/${a.mailboxUserId}/lock-history`)).body,
    dkim: (await fx.call('GET', `/v1/tenants/${a.tenantId}/dkim-keys`)).body,
    quarantine: (await fx.call('GET', `/v1/tenants/${a.tenantId}/quarantine`)).body,
    suppressions: (await fx.call('GET', `/v1/tenants/${a.tenantId}/suppressions`)).body,
    messages: (await fx.call('GET', `/v1/tenants/${a.tenantId}/messages`)).body,
    heldMail: (await fx.call('GET', `/v1/tenants/${a.tenantId}/users/${a.mailboxUserId}/queue`)).body,
  });

  beforeAll(async () => {
    // Public-looking ranges: a tenant key may not make IP users in documentation ranges.
    a = await seedTenant(fx, 'a-corp', '203.0.114.0/28');
    b = await seedTenant(fx, 'b-corp', '203.0.115.0/28');
    before = await snapshotOfA();
  });
  afterAll(() => fx.close());

  const guarded = allRoutes.filter((route) => route.access !== 'public');

  it('has a sample body for every route that takes one', () => {
    const missing = guarded.filter((route) => route.body && !(route.operationId in sampleBodies)).map((route) => route.operationId);
    expect(missing).toEqual([]);
  });

  it("answers 404 (or 403 on operator routes) to tenant B's key on every route with tenant A's ids", async () => {
    const outcomes: string[] = [];
    for (const route of guarded.filter((r) => r.path.includes('{tenantId}'))) {
      const reply = await fx.call(route.method.toUpperCase(), pathFor(route, idsOf(a)), { token: b.key, body: sampleBodies[route.operationId] });
      const expected = route.access === 'operator' ? 403 : 404;
      outcomes.push(`${route.operationId} ${reply.status}`);
      expect(reply.status, `${route.method} ${route.path}: ${JSON.stringify(reply.body)}`).toBe(expected);
      expect(reply.headers.get('content-type')).toContain('application/problem+json');
    }
    expect(outcomes.length).toBeGreaterThanOrEqual(30);
  });

  it("answers 404 to tenant B's key on its own tenant id with A's user, message, domain, key and entry ids", async () => {
    let walked = 0;
    for (const route of guarded.filter((r) => r.access === 'tenant' && /\{(?!tenantId)\w+\}/.test(r.path))) {
      const ids = { ...idsOf(a), tenantId: b.tenantId };
      const reply = await fx.call(route.method.toUpperCase(), pathFor(route, ids), { token: b.key, body: sampleBodies[route.operationId] });
      expect(reply.status, `${route.method} ${route.path}: ${JSON.stringify(reply.body)}`).toBe(404);
      walked += 1;
    }
    expect(walked).toBeGreaterThanOrEqual(12);
  });

  it("answers another tenant's id exactly like an id that does not exist", async () => {
    for (const route of guarded.filter((r) => r.access === 'tenant' && r.path.includes('{tenantId}'))) {
      const foreign = await fx.call(route.method.toUpperCase(), pathFor(route, idsOf(a)), { token: b.key, body: sampleBodies[route.operationId] });
      const ghostIds = Object.fromEntries(Object.entries(idsOf(a)).map(([name]) => [name, `ghost-${name}`]));
      const ghost = await fx.call(route.method.toUpperCase(), pathFor(route, ghostIds), { token: b.key, body: sampleBodies[route.operationId] });
      expect(foreign.status).toBe(ghost.status);
      expect(foreign.body.title).toBe(ghost.body.title);
      expect(String(foreign.body.detail).replace(a.tenantId, 'ghost-tenantId')).toBe(ghost.body.detail);
    }
  });

  it("leaves every piece of tenant A's data as it was", async () => {
    expect(await snapshotOfA()).toEqual(before);
  });

  it("refuses an IP range that overlaps another tenant's, whichever is wider, without naming it", async () => {
    // a-corp has 203.0.114.0/28: a narrower range inside it would win at connect time and take a-corp's smarthost traffic.
    for (const identity of ['203.0.114.5', '203.0.114.0/30', '203.0.114.0/24', '203.0.114.8/29']) {
      const reply = await fx.call('POST', `/v1/tenants/${b.tenantId}/users`, { token: b.key, body: { identity } });
      expect(reply.status, identity).toBe(409);
      expect(reply.body.detail).toContain('another tenant');
      expect(JSON.stringify(reply.body)).not.toContain(a.tenantId);
      expect(JSON.stringify(reply.body)).not.toContain('203.0.114.0/28');
    }
    const beside = await fx.call('POST', `/v1/tenants/${b.tenantId}/users`, { token: b.key, body: { identity: '203.0.114.16/28' } });
    expect(beside.status).toBe(201);
    // Within one tenant, nested ranges are allowed (the most specific one wins).
    const nested = await fx.call('POST', `/v1/tenants/${a.tenantId}/users`, { token: a.key, body: { identity: '203.0.114.1' } });
    expect(nested.status).toBe(201);
    await fx.call('DELETE', `/v1/tenants/${b.tenantId}/users/${beside.body.id}`, { token: b.key });
    await fx.call('DELETE', `/v1/tenants/${a.tenantId}/users/${nested.body.id}`, { token: a.key });
  });

  it('lists only the tenant of the key: a search never returns other tenants messages', async () => {
    const own = await fx.call('GET', `/v1/tenants/${b.tenantId}/messages`, { token: b.key });
    expect(own.status).toBe(200);
    expect(own.body.items.map((m: { id: string }) => m.id).sort()).toEqual([b.deliveredId, b.messageId].sort());
    const byA = await fx.call('GET', `/v1/tenants/${b.tenantId}/messages?sender=${encodeURIComponent(`alice@${a.domain}`)}`, { token: b.key });
    expect(byA.body.items).toEqual([]);
    const ownUsers = await fx.call('GET', `/v1/tenants/${b.tenantId}/users`, { token: b.key });
    expect(ownUsers.body.items.every((u: { identity: string }) => !u.identity.includes(a.domain))).toBe(true);
  });
});
