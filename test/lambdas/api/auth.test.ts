// Bearer authentication: operator token, tenant API keys (issued once, stored hashed, revocable),
// and the per-IP limit on failed checks.
import { afterEach, describe, expect, it } from 'vitest';
import { ApiFixture, OPERATOR_TOKEN } from './api-fixture.js';

let fx: ApiFixture;
afterEach(() => fx.close());

async function tenantWithKey(name = 'acme') {
  const tenant = (await fx.call('POST', '/v1/tenants', { body: { name } })).body;
  const created = await fx.call('POST', `/v1/tenants/${tenant.id}/keys`, { body: { name: 'billing' } });
  return { tenantId: tenant.id as string, created };
}

describe('operator token', () => {
  it('grants operator routes and is refused when wrong or missing', async () => {
    fx = new ApiFixture();
    expect((await fx.call('GET', '/v1/me')).body).toEqual({ role: 'operator', tenantId: null, keyId: null });
    const wrong = await fx.call('GET', '/v1/tenants', { token: `${OPERATOR_TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Bearer');
    expect(wrong.headers.get('content-type')).toContain('application/problem+json');
    expect(wrong.body).toMatchObject({ type: 'urn:outpost:problem:unauthenticated', status: 401 });
    const missing = await fx.call('GET', '/v1/tenants', { token: null });
    expect(missing.status).toBe(401);
    expect(missing.body.detail).toContain('Authorization: Bearer');
  });

  it('gives no operator access at all when the deployment has no operator token', async () => {
    fx = new ApiFixture();
    const app = (await import('../../../lambdas/api/app.js')).createApiApp({ ...fx.deps, operatorToken: '' });
    // Empty, arbitrary, and operator-looking tokens: none may become the operator (a fresh app
    // for each, so that the limit on failed checks does not answer 429 first).
    const { createApiApp } = await import('../../../lambdas/api/app.js');
    for (const token of ['', 'x', 'op_guessed-operator-token-0123456789', 'undefined', 'null']) {
      for (const path of ['/v1/me', '/v1/tenants']) {
        const response = await createApiApp({ ...fx.deps, operatorToken: '' }).request(path, { headers: { authorization: `Bearer ${token}` } });
        expect(response.status, `${path} with "${token}"`).toBe(401);
      }
    }
    const created = await app.request('/v1/tenants', { method: 'POST', headers: { authorization: 'Bearer x', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'intruder' }) });
    expect(created.status).toBe(401);
    expect(await fx.deps.configStore.listTenants()).toEqual([]);
  });
});

describe('tenant API keys', () => {
  it('are shown once, listed without the key, stored hashed, record their last use, and stop working when revoked', async () => {
    fx = new ApiFixture();
    const { tenantId, created } = await tenantWithKey();
    expect(created.status).toBe(201);
    const token: string = created.body.key;
    expect(token).toMatch(/^opk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({ name: 'billing', lastUsedAt: null });

    const listed = await fx.call('GET', `/v1/tenants/${tenantId}/keys`);
    expect(listed.body.items).toEqual([{ id: created.body.id, name: 'billing', createdAt: created.body.createdAt, lastUsedAt: null }]);
    expect(JSON.stringify(listed.body)).not.toContain(token.slice(22));

    const row = fx.db.prepare('SELECT * FROM api_keys').get() as Record<string, unknown>;
    expect(JSON.stringify(row)).not.toContain(token.slice(22));
    expect(row['secret_hash']).toMatch(/^[0-9a-f]{64}$/);

    fx.now += 5_000;
    const me = await fx.call('GET', '/v1/me', { token });
    expect(me.body).toEqual({ role: 'tenant', tenantId, keyId: created.body.id });
    const used = await fx.call('GET', `/v1/tenants/${tenantId}/keys`);
    expect(used.body.items[0].lastUsedAt).toBe(new Date(fx.now).toISOString());

    expect((await fx.call('DELETE', `/v1/tenants/${tenantId}/keys/${created.body.id}`)).status).toBe(204);
    const revoked = await fx.call('GET', `/v1/tenants/${tenantId}/users`, { token });
    expect(revoked.status).toBe(401);
    expect((await fx.call('DELETE', `/v1/tenants/${tenantId}/keys/${created.body.id}`)).status).toBe(404);
  });

  it('refuses a key whose secret was altered but whose id is right', async () => {
    fx = new ApiFixture();
    const { tenantId, created } = await tenantWithKey();
    const token: string = created.body.key;
    const altered = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect((await fx.call('GET', `/v1/tenants/${tenantId}`, { token: altered })).status).toBe(401);
    expect((await fx.call('GET', `/v1/tenants/${tenantId}`, { token })).status).toBe(200);
  });

  it('cannot use operator routes (403), and stops working when its tenant is deleted', async () => {
    fx = new ApiFixture();
    const { tenantId, created } = await tenantWithKey();
    const token: string = created.body.key;
    for (const [method, path, body] of [
      ['GET', '/v1/tenants', undefined],
      ['POST', '/v1/tenants', { name: 'other' }],
      ['POST', `/v1/tenants/${tenantId}/keys`, { name: 'more' }],
      ['GET', `/v1/tenants/${tenantId}/keys`, undefined],
      ['PATCH', `/v1/tenants/${tenantId}`, { suspended: false }],
      ['DELETE', `/v1/tenants/${tenantId}`, undefined],
    ] as const) {
      const reply = await fx.call(method, path, { token, body });
      expect(reply.status, `${method} ${path}`).toBe(403);
    }
    expect((await fx.call('DELETE', `/v1/tenants/${tenantId}`)).status).toBe(204);
    expect((await fx.call('GET', '/v1/me', { token })).status).toBe(401);
  });

  it('are read-only while the tenant is suspended', async () => {
    fx = new ApiFixture();
    const { tenantId, created } = await tenantWithKey();
    const token: string = created.body.key;
    expect((await fx.call('PATCH', `/v1/tenants/${tenantId}`, { body: { suspended: true } })).body.suspended).toBe(true);
    expect((await fx.call('GET', `/v1/tenants/${tenantId}/users`, { token })).status).toBe(200);
    const write = await fx.call('POST', `/v1/tenants/${tenantId}/domains`, { token, body: { name: 'acme.example' } });
    expect(write.status).toBe(403);
    expect(write.body.detail).toContain('suspended');
    // The operator still can.
    expect((await fx.call('POST', `/v1/tenants/${tenantId}/domains`, { body: { name: 'acme.example' } })).status).toBe(201);
    await fx.call('PATCH', `/v1/tenants/${tenantId}`, { body: { suspended: false } });
    expect((await fx.call('POST', `/v1/tenants/${tenantId}/domains`, { token, body: { name: 'acme2.example' } })).status).toBe(201);
  });
});

describe('failed authentication limit', () => {
  it('answers 429 with Retry-After after 10 failures a minute from one IP, for good tokens too, until the window passes', async () => {
    fx = new ApiFixture();
    const { created } = await tenantWithKey();
    const token: string = created.body.key;
    for (let attempt = 1; attempt <= 10; attempt++) {
      fx.now += 1_000;
      const reply = await fx.call('GET', '/v1/me', { token: `opk_0123456789abcdef_${'x'.repeat(43)}`, ip: '203.0.113.5' });
      expect(reply.status, `attempt ${attempt}`).toBe(401);
    }
    const limited = await fx.call('GET', '/v1/me', { token, ip: '203.0.113.5' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toContain('application/problem+json');
    // The first failure was 10 s ago: it leaves the 60 s window in 50 s.
    expect(limited.headers.get('retry-after')).toBe('51');
    expect(limited.body.detail).toContain('retry after 51 seconds');
    // Another address is not affected.
    expect((await fx.call('GET', '/v1/me', { token, ip: '203.0.113.6' })).status).toBe(200);
    fx.now += 51_000;
    expect((await fx.call('GET', '/v1/me', { token, ip: '203.0.113.5' })).status).toBe(200);
  });

  it('counts wrong operator tokens too, and not requests without a token', async () => {
    fx = new ApiFixture({ authFailures: { max: 3, windowMs: 60_000 } });
    for (let attempt = 0; attempt < 5; attempt++) expect((await fx.call('GET', '/v1/me', { token: null, ip: '203.0.113.7' })).status).toBe(401);
    for (let attempt = 0; attempt < 3; attempt++) expect((await fx.call('GET', '/v1/me', { token: 'guess', ip: '203.0.113.7' })).status).toBe(401);
    expect((await fx.call('GET', '/v1/me', { ip: '203.0.113.7' })).status).toBe(429);
  });

  it('takes the client IP from API Gateway request context on Lambda', async () => {
    fx = new ApiFixture({ authFailures: { max: 1, windowMs: 60_000 } });
    const env = (ip: string) => ({ requestContext: { http: { sourceIp: ip } } });
    const bad = { headers: { authorization: 'Bearer nope' } };
    expect((await fx.app.request('/v1/me', bad, env('198.51.100.1'))).status).toBe(401);
    expect((await fx.app.request('/v1/me', bad, env('198.51.100.1'))).status).toBe(429);
    expect((await fx.app.request('/v1/me', bad, env('198.51.100.2'))).status).toBe(401);
  });
});
