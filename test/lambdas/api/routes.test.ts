// Every route of the API against real SQLite stores: what it does, and how it refuses bad input.
// Responses are checked against their documented schemas by the app itself (checkResponses), and
// the last test fails if a route of the table was never answered with success here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../../core/identity.js';
import { MESSAGE_STATUSES } from '../../../core/stores.js';
import { messageStatus } from '../../../lambdas/api/schemas.js';
import { allRoutes, createApiApp } from '../../../lambdas/api/app.js';
import { ApiFixture, seedTenant, type SeededTenant } from './api-fixture.js';

const fx = new ApiFixture();
let acme: SeededTenant;
let t: string;
afterAll(() => fx.close());
beforeAll(async () => {
  acme = await seedTenant(fx, 'acme', '192.0.2.0/28');
  t = `/v1/tenants/${acme.tenantId}`;
});

describe('OpenAPI document', () => {
  it('is public and lists every route of the table with its method, parameters and bodies', async () => {
    const reply = await fx.call('GET', '/v1/openapi.json', { token: null });
    expect(reply.status).toBe(200);
    expect(reply.body.openapi).toBe('3.1.0');
    for (const route of allRoutes) {
      const operation = reply.body.paths[route.path]?.[route.method];
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      expect(operation.operationId).toBe(route.operationId);
      const names = (operation.parameters as Array<{ name: string; in: string }>).filter((p) => p.in === 'path').map((p) => p.name);
      expect(names.sort()).toEqual([...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort());
      if (route.body) expect(operation.requestBody.content['application/json'].schema.type).toBe('object');
      if (route.access !== 'public') expect(operation.responses['401']).toBeDefined();
    }
    const search = reply.body.paths['/v1/tenants/{tenantId}/messages'].get;
    expect(search.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['limit', 'cursor', 'sender', 'recipient', 'status', 'from', 'to']));
    const patch = reply.body.paths['/v1/tenants/{tenantId}/users/{userId}/settings'].patch;
    expect(patch.requestBody.content['application/json'].schema.properties.mailsPerHour.description).toContain('Out Going Limit');
  });

  it('describes every tag it uses', async () => {
    const doc = (await fx.call('GET', '/v1/openapi.json', { token: null })).body;
    const declared = new Set(doc.tags.map((tag: { name: string }) => tag.name));
    expect(allRoutes.map((route) => route.tag).filter((tag) => !declared.has(tag))).toEqual([]);
  });

  it('answers unknown routes with a 404 problem', async () => {
    const reply = await fx.call('GET', '/v1/nope');
    expect(reply.status).toBe(404);
    expect(reply.headers.get('content-type')).toContain('application/problem+json');
    expect(reply.body.detail).toContain('/v1/openapi.json');
  });
});

describe('tenants', () => {
  it('creates, lists with pagination, reads, suspends and deletes', async () => {
    const made = await fx.call('POST', '/v1/tenants', { body: { name: 'beta', settings: { mailsPerHour: 50 } } });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'beta', suspended: false, settings: { mailsPerHour: 50 } });
    expect(made.headers.get('location')).toBe(`/v1/tenants/${made.body.id}`);
    await fx.call('POST', '/v1/tenants', { body: { name: 'gamma' } });

    const first = await fx.call('GET', '/v1/tenants?limit=2');
    expect(first.body.items.map((x: { name: string }) => x.name)).toEqual(['acme', 'beta']);
    const second = await fx.call('GET', `/v1/tenants?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body).toMatchObject({ items: [{ name: 'gamma' }], nextCursor: null });

    expect((await fx.call('GET', `/v1/tenants/${made.body.id}`)).body.name).toBe('beta');
    expect((await fx.call('PATCH', `/v1/tenants/${made.body.id}`, { body: { suspended: true } })).body.suspended).toBe(true);
    expect((await fx.call('DELETE', `/v1/tenants/${made.body.id}`)).status).toBe(204);
    expect((await fx.call('GET', `/v1/tenants/${made.body.id}`)).status).toBe(404);
    expect((await fx.call('DELETE', `/v1/tenants/${made.body.id}`)).status).toBe(404);
  });

  it('deletes a tenant with its keys, DKIM keys, suppression list and quarantine; its domain can be added afresh', async () => {
    const doomed = await seedTenant(fx, 'doomed', '203.0.113.0/28');
    const held = await fx.deps.quarantine?.store.get(doomed.messageId);
    expect(held).toBeDefined();
    expect((await fx.call('DELETE', `/v1/tenants/${doomed.tenantId}`)).status).toBe(204);
    expect(await fx.deps.dkimKeys?.list(doomed.domain)).toEqual([]);
    expect(await fx.deps.suppression?.list(doomed.tenantId, 0)).toEqual([]);
    expect(await fx.deps.quarantine?.store.get(doomed.messageId)).toBeUndefined();
    expect(await fx.blobs.exists(held?.blobKey ?? '')).toBe(false);
    expect(await fx.deps.apiKeys.list(doomed.tenantId)).toEqual([]);
    const heir = (await fx.call('POST', '/v1/tenants', { body: { name: 'heir' } })).body;
    expect((await fx.call('POST', `/v1/tenants/${heir.id}/domains`, { body: { name: doomed.domain } })).status).toBe(201);
    expect((await fx.call('GET', `/v1/tenants/${heir.id}/dkim-keys`)).body.items).toEqual([]);
    await fx.call('DELETE', `/v1/tenants/${heir.id}`);
  });

  it('refuses invalid input with a problem listing each zod issue', async () => {
    const bad = await fx.call('POST', '/v1/tenants', { body: { name: '', settings: { mailsPerHour: -1, nope: 1 } } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.body.type).toBe('urn:outpost:problem:validation');
    const paths = bad.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['body.name', 'body.settings.mailsPerHour', 'body.settings']));
    expect(bad.body.detail).toMatch(/^body\.name: /);

    expect((await fx.call('POST', '/v1/tenants', { body: { name: 'acme' } })).status).toBe(409);
    expect((await fx.call('PATCH', t, { body: { suspended: 'yes' } })).status).toBe(400);
    expect((await fx.call('GET', '/v1/tenants?limit=0')).body.errors[0].path).toBe('query.limit');
    expect((await fx.call('GET', '/v1/tenants?cursor=garbage')).status).toBe(400);
    const notJson = await fx.call('POST', '/v1/tenants', { rawBody: '{"name":', contentType: 'application/json' });
    expect(notJson).toMatchObject({ status: 400, body: { detail: 'the body is not valid JSON' } });
    expect((await fx.call('POST', '/v1/tenants', { rawBody: 'name=x', contentType: 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await fx.call('POST', '/v1/tenants', { rawBody: JSON.stringify({ name: 'x'.repeat(70_000) }) })).status).toBe(413);
  });
});

describe('API keys and the caller', () => {
  it('says who the caller is, lists keys, revokes one, and refuses a key without a name', async () => {
    expect((await fx.call('GET', '/v1/me', { token: acme.key })).body).toEqual({ role: 'tenant', tenantId: acme.tenantId, keyId: acme.keyId });
    fx.now += 1_000; // listed oldest first
    const extra = await fx.call('POST', `${t}/keys`, { body: { name: 'cron' } });
    const listed = await fx.call('GET', `${t}/keys`);
    expect(listed.body.items.map((k: { name: string }) => k.name)).toEqual(['panel', 'cron']);
    expect(listed.body.items.every((k: Record<string, unknown>) => !('key' in k))).toBe(true);
    expect((await fx.call('DELETE', `${t}/keys/${extra.body.id}`)).status).toBe(204);
    expect((await fx.call('GET', `${t}/keys`)).body.items.map((k: { name: string }) => k.name)).toEqual(['panel']);
    expect((await fx.call('POST', `${t}/keys`, { body: { name: '  ' } })).status).toBe(400);
    expect((await fx.call('DELETE', `${t}/keys/unknown`)).status).toBe(404);
  });
});

describe('tenant settings', () => {
  it('shows overrides and effective defaults; PATCH sets keys and null removes them', async () => {
    const initial = await fx.call('GET', `${t}/settings`);
    expect(initial.body.overrides).toEqual({});
    expect(initial.body.effective.mailsPerHour).toBe(500);
    const changed = await fx.call('PATCH', `${t}/settings`, { body: { mailsPerHour: 200, requiredFromDomains: ['Acme.Example'] } });
    expect(changed.body.overrides).toEqual({ mailsPerHour: 200, requiredFromDomains: ['acme.example'] });
    expect(changed.body.effective.mailsPerHour).toBe(200);
    const cleared = await fx.call('PATCH', `${t}/settings`, { body: { requiredFromDomains: null } });
    expect(cleared.body.overrides).toEqual({ mailsPerHour: 200 });
    const bad = await fx.call('PATCH', `${t}/settings`, { body: { mailsPerHour: 'many', colour: 'red' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['body.mailsPerHour', 'body']));
    await fx.call('PATCH', `${t}/settings`, { body: { mailsPerHour: null } });
  });
});

describe('domains', () => {
  it('adds (normalised), lists and removes; refuses duplicates, bad names and removal while users exist', async () => {
    const added = await fx.call('POST', `${t}/domains`, { body: { name: 'Mail.Acme.Example.' } });
    expect(added).toMatchObject({ status: 201, body: { name: 'mail.acme.example', state: 'verified', verification: null } });
    const listed = await fx.call('GET', `${t}/domains`, { token: acme.key });
    expect(listed.body.items.map((d: { name: string }) => d.name)).toEqual(['acme.example', 'mail.acme.example']);
    expect((await fx.call('POST', `${t}/domains`, { body: { name: 'mail.acme.example' } })).status).toBe(409);
    expect((await fx.call('POST', `${t}/domains`, { body: { name: 'not a domain' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/domains`, { body: {} })).status).toBe(400);
    const busy = await fx.call('DELETE', `${t}/domains/acme.example`);
    expect(busy.status).toBe(409);
    expect(busy.body.detail).toContain('delete them first');
    await fx.call('POST', `${t}/domains/mail.acme.example/dkim-keys`, { body: { algorithm: 'ed25519' } });
    expect((await fx.call('DELETE', `${t}/domains/mail.acme.example`, { token: acme.key })).status).toBe(204);
    expect(await fx.deps.dkimKeys?.list('mail.acme.example')).toEqual([]);
    expect((await fx.call('DELETE', `${t}/domains/mail.acme.example`)).status).toBe(404);
  });
});

describe('outgoing users', () => {
  it('creates the three kinds; generates and returns a password once when none is given', async () => {
    const mailbox = await fx.call('POST', `${t}/users`, { token: acme.key, body: { identity: 'Bob@ACME.example', settings: { mailsPerHour: 10 } } });
    expect(mailbox.status).toBe(201);
    expect(mailbox.body).toMatchObject({ kind: 'mailbox', identity: 'bob@acme.example', domain: 'acme.example', hasPassword: true, overrides: { mailsPerHour: 10 } });
    expect(mailbox.body.effective.mailsPerHour).toBe(10);
    expect(mailbox.body.generatedPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const stored = await fx.deps.configStore.getUser(mailbox.body.id);
    expect(await verifyPassword(mailbox.body.generatedPassword, stored?.passwordHash ?? null)).toBe(true);
    expect((await fx.call('GET', `${t}/users/${mailbox.body.id}`)).body.generatedPassword).toBeUndefined();

    const given = await fx.call('POST', `${t}/users`, { body: { identity: 'carol@acme.example', password: 'a long password' } });
    expect(given.body.generatedPassword).toBeUndefined();
    const ip = await fx.call('POST', `${t}/users`, { body: { identity: '2001:db8::/48' } });
    expect(ip.body).toMatchObject({ kind: 'ip', identity: '2001:db8::/48', domain: null, hasPassword: false });
    expect(ip.body.generatedPassword).toBeUndefined();
  });

  it('refuses identities outside the tenant domains, bad identities, duplicates and passwords for IP users', async () => {
    const foreign = await fx.call('POST', `${t}/users`, { body: { identity: 'eve@elsewhere.example' } });
    expect(foreign.status).toBe(422);
    expect(foreign.body.detail).toContain(`POST /v1/tenants/${acme.tenantId}/domains`);
    expect((await fx.call('POST', `${t}/users`, { body: { identity: 'a..b@acme.example' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/users`, { body: { identity: '10.0.0.0/33' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/users`, { body: { identity: 'alice@acme.example' } })).status).toBe(409);
    expect((await fx.call('POST', `${t}/users`, { body: { identity: '10.1.0.0/16', password: 'longenough' } })).status).toBe(422);
    const short = await fx.call('POST', `${t}/users`, { body: { identity: 'dan@acme.example', password: 'short' } });
    expect(short.status).toBe(400);
    expect(short.body.errors[0].path).toBe('body.password');
    expect((await fx.call('POST', `${t}/users`, { body: { identity: 'dan@acme.example', settings: { autoLock: 'yes' } } })).status).toBe(400);
  });

  it('refuses IP ranges wider than /16 (IPv4) or /32 (IPv6) even to the operator: an IP user relays without AUTH', async () => {
    for (const identity of ['0.0.0.0/0', '10.0.0.0/15', '::/0', '2001:db8::/31']) {
      const reply = await fx.call('POST', `${t}/users`, { body: { identity } });
      expect(reply.status, identity).toBe(422);
      expect(reply.headers.get('content-type')).toContain('application/problem+json');
      expect(reply.body.detail).toContain('relays without AUTH');
    }
    expect((await fx.call('GET', `${t}/users?kind=ip&limit=100`)).body.items.map((u: { identity: string }) => u.identity)).not.toContain('0.0.0.0/0');
    const widest = await fx.call('POST', `${t}/users`, { body: { identity: '10.20.0.0/16' } });
    expect(widest.status).toBe(201);
    expect((await fx.call('DELETE', `${t}/users/${widest.body.id}`)).status).toBe(204);
  });

  it('refuses passwords with control characters, which SMTP AUTH PLAIN cannot carry', async () => {
    const nul = await fx.call('POST', `${t}/users/${acme.mailboxUserId}/password`, { body: { password: 'abcdefgh\u0000ij' } });
    expect(nul.status).toBe(400);
    expect(nul.body.errors[0]).toMatchObject({ path: 'body.password', message: expect.stringContaining('control characters') });
    const create = await fx.call('POST', `${t}/users`, { body: { identity: 'nul@acme.example', password: 'line\r\nbreak1' } });
    expect(create.status).toBe(400);
  });

  it('lists with kind filter, lock state and volume today, paginated by identity', async () => {
    const all = await fx.call('GET', `${t}/users?limit=100`, { token: acme.key });
    const alice = all.body.items.find((u: { id: string }) => u.id === acme.mailboxUserId);
    expect(alice.lock).toMatchObject({ locked: true, permanent: false, reasons: [{ name: 'RATE_LIMIT_HOUR' }] });
    expect(alice.today).toEqual({ messages: 2, recipients: 3 });
    const ipOnly = await fx.call('GET', `${t}/users?kind=ip`);
    expect(ipOnly.body.items.map((u: { kind: string }) => u.kind)).toEqual(['ip', 'ip']);
    const page = await fx.call('GET', `${t}/users?limit=1`);
    const next = await fx.call('GET', `${t}/users?limit=1&cursor=${page.body.nextCursor}`);
    expect(next.body.items[0].identity > page.body.items[0].identity).toBe(true);
    expect((await fx.call('GET', `${t}/users?kind=robot`)).status).toBe(400);
  });

  it('reads a user with overrides and effective settings; PATCH changes and clears overrides', async () => {
    await fx.call('PATCH', `${t}/settings`, { body: { mailsPerMinute: 7 } });
    const user = await fx.call('GET', `${t}/users/${acme.domainUserId}`);
    expect(user.body).toMatchObject({ kind: 'domain', identity: 'acme.example', overrides: {} });
    expect(user.body.effective.mailsPerMinute).toBe(7);
    const changed = await fx.call('PATCH', `${t}/users/${acme.domainUserId}/settings`, { token: acme.key, body: { mailsPerMinute: 3, dkimSelector: 'sel1' } });
    expect(changed.body).toMatchObject({ overrides: { mailsPerMinute: 3, dkimSelector: 'sel1' }, effective: { mailsPerMinute: 3, dkimSelector: 'sel1' } });
    const cleared = await fx.call('PATCH', `${t}/users/${acme.domainUserId}/settings`, { body: { mailsPerMinute: null } });
    expect(cleared.body.overrides).toEqual({ dkimSelector: 'sel1' });
    expect(cleared.body.effective.mailsPerMinute).toBe(7);
    expect((await fx.call('PATCH', `${t}/users/${acme.domainUserId}/settings`, { body: { lockMinutes: 0 } })).status).toBe(400);
    expect((await fx.call('GET', `${t}/users/no-such-user`)).status).toBe(404);
  });

  it('sets or rotates the password without ever returning a given one', async () => {
    const set = await fx.call('POST', `${t}/users/${acme.domainUserId}/password`, { body: { password: 'brand new secret' } });
    expect(set.status).toBe(204);
    expect(set.body).toBe('');
    let stored = await fx.deps.configStore.getUser(acme.domainUserId);
    expect(await verifyPassword('brand new secret', stored?.passwordHash ?? null)).toBe(true);
    const rotated = await fx.call('POST', `${t}/users/${acme.domainUserId}/password`, { token: acme.key });
    expect(rotated.status).toBe(200);
    stored = await fx.deps.configStore.getUser(acme.domainUserId);
    expect(await verifyPassword(rotated.body.generatedPassword, stored?.passwordHash ?? null)).toBe(true);
    expect(await verifyPassword('brand new secret', stored?.passwordHash ?? null)).toBe(false);
    expect((await fx.call('POST', `${t}/users/${acme.ipUserId}/password`, { body: {} })).status).toBe(422);
    expect((await fx.call('POST', `${t}/users/${acme.domainUserId}/password`, { body: { password: 'short' } })).status).toBe(400);
  });

  it('deletes a user', async () => {
    const made = await fx.call('POST', `${t}/users`, { body: { identity: 'temp@acme.example' } });
    expect((await fx.call('DELETE', `${t}/users/${made.body.id}`, { token: acme.key })).status).toBe(204);
    expect((await fx.call('GET', `${t}/users/${made.body.id}`)).status).toBe(404);
    expect((await fx.call('DELETE', `${t}/users/${made.body.id}`)).status).toBe(404);
  });
});

describe('message log', () => {
  it('searches by sender, recipient, status and time range, newest first, with pagination', async () => {
    const all = await fx.call('GET', `${t}/messages`, { token: acme.key });
    expect(all.body.items.map((m: { id: string }) => m.id)).toEqual([acme.messageId, acme.deliveredId]);
    expect(all.body.items[1]).toMatchObject({ mailFrom: 'alice@acme.example', rcptTo: ['bob@dest.example', 'carol@dest.example'], status: 'delivered', subject: 'Invoice' });
    const byRecipient = await fx.call('GET', `${t}/messages?recipient=CAROL@dest.example`);
    expect(byRecipient.body.items.map((m: { id: string }) => m.id)).toEqual([acme.deliveredId]);
    expect((await fx.call('GET', `${t}/messages?status=quarantined`)).body.items.map((m: { id: string }) => m.id)).toEqual([acme.messageId]);
    expect((await fx.call('GET', `${t}/messages?sender=nobody@acme.example`)).body.items).toEqual([]);
    const from = new Date(fx.now - 3_600_000 + 30_000).toISOString();
    expect((await fx.call('GET', `${t}/messages?from=${from}`)).body.items.map((m: { id: string }) => m.id)).toEqual([acme.messageId]);
    expect((await fx.call('GET', `${t}/messages?userId=${acme.ipUserId}`)).body.items).toEqual([]);
    const page = await fx.call('GET', `${t}/messages?limit=1`);
    expect(page.body.nextCursor).toBeTruthy();
    const next = await fx.call('GET', `${t}/messages?limit=1&cursor=${page.body.nextCursor}`);
    expect(next.body).toMatchObject({ items: [{ id: acme.deliveredId }], nextCursor: null });
  });

  it('refuses bad search parameters', async () => {
    expect((await fx.call('GET', `${t}/messages?status=lost`)).status).toBe(400);
    expect((await fx.call('GET', `${t}/messages?from=yesterday`)).body.errors[0].path).toBe('query.from');
    expect((await fx.call('GET', `${t}/messages?limit=501`)).status).toBe(400);
    expect(await fx.call('GET', `${t}/messages?cursor=bm90LWEtY3Vyc29y`)).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/cursor/) } });
    const reversed = await fx.call('GET', `${t}/messages?from=2026-03-10T00:00:00Z&to=2026-03-09T00:00:00Z`);
    expect(reversed).toMatchObject({ status: 400, body: { detail: 'query.from must be before query.to' } });
  });

  it('shows a message with its events by queue id', async () => {
    const reply = await fx.call('GET', `${t}/messages/${acme.deliveredId}`, { token: acme.key });
    expect(reply.body.message.id).toBe(acme.deliveredId);
    expect(reply.body.events).toEqual([{ at: new Date(acme.seededAt).toISOString(), event: 'delivered', detail: { recipient: 'bob@dest.example' } }]);
    expect((await fx.call('GET', `${t}/messages/unknown`)).status).toBe(404);
  });
});

describe('statistics', () => {
  it('counts per hour for the tenant: accepted, recipients, sent and refused by reason', async () => {
    const reply = await fx.call('GET', `${t}/stats?bucket=hour`, { token: acme.key });
    expect(reply.body.points).toHaveLength(24);
    const hour = reply.body.points.find((p: { messages: number }) => p.messages > 0);
    expect(hour).toEqual({ start: '2026-03-10T11:00:00.000Z', messages: 2, recipients: 3, sent: 1, refused: { SPAM_SCORE: 1 } });
    expect(reply.body.totals).toEqual({ messages: 2, recipients: 3, sent: 1, refused: { SPAM_SCORE: 1 } });
  });

  it('counts per day for one user, and only that user', async () => {
    const alice = await fx.call('GET', `${t}/users/${acme.mailboxUserId}/stats?bucket=day&from=2026-03-01T00:00:00Z&to=2026-03-11T00:00:00Z`);
    expect(alice.body.points).toHaveLength(10);
    expect(alice.body.points[9]).toEqual({ start: '2026-03-10T00:00:00.000Z', messages: 2, recipients: 3, sent: 1, refused: { SPAM_SCORE: 1 } });
    const ip = await fx.call('GET', `${t}/users/${acme.ipUserId}/stats?bucket=day`);
    expect(ip.body.totals).toEqual({ messages: 0, recipients: 0, sent: 0, refused: {} });
  });

  it('refuses ranges too long for the bucket and bad buckets', async () => {
    const tooLong = await fx.call('GET', `${t}/stats?bucket=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.detail).toContain('bucket=day');
    expect((await fx.call('GET', `${t}/stats?bucket=week`)).status).toBe(400);
    expect((await fx.call('GET', `${t}/users/nobody/stats`)).status).toBe(404);
  });
});

describe('locks', () => {
  it('lists locked users, unlocks with a reason, locks by hand, and shows the history with reasons', async () => {
    const locked = await fx.call('GET', `${t}/locks`, { token: acme.key });
    expect(locked.body.items).toEqual([expect.objectContaining({ userId: acme.mailboxUserId, identity: 'alice@acme.example', locked: true })]);

    const unlocked = await fx.call('POST', `${t}/users/${acme.mailboxUserId}/unlock`, { token: acme.key, body: { reason: 'customer fixed the script' } });
    expect(unlocked.body).toMatchObject({ locked: false, timedUnlocks: 0 });
    expect((await fx.call('GET', `${t}/locks`)).body.items).toEqual([]);

    const manual = await fx.call('POST', `${t}/users/${acme.mailboxUserId}/lock`, { body: { reason: 'compromised account' } });
    expect(manual.body).toMatchObject({ locked: true, permanent: true, until: null, reasons: [{ name: 'MANUAL_LOCK', evidence: { by: 'operator', reason: 'compromised account' } }] });
    await fx.call('POST', `${t}/users/${acme.mailboxUserId}/unlock`, { body: { reason: 'password rotated' } });
    const timed = await fx.call('POST', `${t}/users/${acme.mailboxUserId}/lock`, { body: { reason: 'cool down', minutes: 15 } });
    expect(timed.body).toMatchObject({ locked: true, permanent: false, until: new Date(fx.now + 15 * 60_000).toISOString() });

    const history = await fx.call('GET', `${t}/users/${acme.mailboxUserId}/lock-history`, { token: acme.key });
    expect(history.body.items.map((e: { kind: string }) => e.kind)).toEqual(['lock', 'manual-unlock', 'lock', 'manual-unlock', 'lock']);
    expect(history.body.items[1]).toMatchObject({ by: 'operator', reason: 'password rotated' });
    expect(history.body.items[3]).toMatchObject({ by: `tenant-key:${acme.keyId}`, reason: 'customer fixed the script' });
    expect(history.body.items[4].reasons).toEqual([{ name: 'RATE_LIMIT_HOUR', evidence: { limit: 500 } }]);
    const page = await fx.call('GET', `${t}/users/${acme.mailboxUserId}/lock-history?limit=2`);
    const next = await fx.call('GET', `${t}/users/${acme.mailboxUserId}/lock-history?limit=2&cursor=${page.body.nextCursor}`);
    expect(next.body.items.map((e: { kind: string }) => e.kind)).toEqual(['lock', 'manual-unlock']);
  });

  it('refuses lock requests without a reason or with a bad duration', async () => {
    expect((await fx.call('POST', `${t}/users/${acme.mailboxUserId}/lock`, { body: {} })).body.errors[0].path).toBe('body.reason');
    expect((await fx.call('POST', `${t}/users/${acme.mailboxUserId}/lock`, { body: { reason: 'x', minutes: 0 } })).status).toBe(400);
    expect((await fx.call('POST', `${t}/users/${acme.mailboxUserId}/unlock`, { body: { reason: '' } })).status).toBe(400);
  });
});

describe('DKIM keys', () => {
  it('creates, lists with the DNS record, rotates and deletes', async () => {
    const listed = await fx.call('GET', `${t}/dkim-keys`, { token: acme.key });
    expect(listed.body.items).toHaveLength(1);
    expect(listed.body.items[0]).toMatchObject({ domain: 'acme.example', selector: 'sel1', algorithm: 'ed25519', isDefault: true });
    expect(listed.body.items[0].dns.name).toBe('sel1._domainkey.acme.example.');
    expect(listed.body.items[0].dns.value).toMatch(/^v=DKIM1; k=ed25519; p=/);
    expect(JSON.stringify(listed.body)).not.toContain('PRIVATE KEY');

    const second = await fx.call('POST', `${t}/domains/acme.example/dkim-keys`, { body: { selector: 'sel2', algorithm: 'ed25519' } });
    expect(second).toMatchObject({ status: 201, body: { selector: 'sel2', isDefault: false } });
    const rotated = await fx.call('POST', `${t}/domains/acme.example/dkim-keys/rotate`, { token: acme.key, body: { algorithm: 'ed25519' } });
    expect(rotated.status).toBe(201);
    expect(rotated.body.isDefault).toBe(true);
    expect(rotated.body.selector).toBe('o20260310');
    const after = await fx.call('GET', `${t}/dkim-keys?domain=acme.example`);
    expect(after.body.items.filter((k: { isDefault: boolean }) => k.isDefault).map((k: { selector: string }) => k.selector)).toEqual(['o20260310']);

    expect((await fx.call('DELETE', `${t}/domains/acme.example/dkim-keys/sel2`, { token: acme.key })).status).toBe(204);
    expect((await fx.call('DELETE', `${t}/domains/acme.example/dkim-keys/sel2`)).status).toBe(404);
  });

  it('refuses taken or invalid selectors, unknown algorithms and domains of no tenant', async () => {
    expect((await fx.call('POST', `${t}/domains/acme.example/dkim-keys`, { body: { selector: 'sel1' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/domains/acme.example/dkim-keys`, { body: { selector: 'bad selector!' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/domains/acme.example/dkim-keys`, { body: { algorithm: 'dsa' } })).status).toBe(400);
    expect((await fx.call('POST', `${t}/domains/other.example/dkim-keys`, { body: {} })).status).toBe(404);
    expect((await fx.call('GET', `${t}/dkim-keys?domain=other.example`)).status).toBe(404);
  });
});

describe('quarantine', () => {
  it('lists held messages with reasons and shows their headers but never the body', async () => {
    const listed = await fx.call('GET', `${t}/quarantine`, { token: acme.key });
    expect(listed.body.items).toEqual([
      expect.objectContaining({ messageId: acme.messageId, kind: 'spam', reasons: [{ name: 'SPAM_SCORE', score: 12, evidence: { engine: 'rspamd' } }], explanation: ['it was classified as spam'] }),
    ]);
    const shown = await fx.call('GET', `${t}/quarantine/${acme.messageId}`, { token: acme.key });
    expect(shown.body.headers).toEqual([
      { name: 'From', value: 'alice@acme.example' },
      { name: 'To', value: 'dave@dest.example' },
      { name: 'Subject', value: 'Cheap pills' },
    ]);
    expect(JSON.stringify(shown.body)).not.toContain('SECRET BODY');
  });

  it('releases a held message to delivery and deletes another with its blob', async () => {
    const released = await fx.call('POST', `${t}/quarantine/${acme.messageId}/release`, { token: acme.key });
    expect(released.status).toBe(204);
    expect((await fx.queue.depth('deliver')).visible).toBe(1);
    expect((await fx.call('GET', `${t}/messages/${acme.messageId}`)).body.message.status).toBe('queued');
    expect((await fx.call('GET', `${t}/quarantine/${acme.messageId}`)).status).toBe(404);
    expect((await fx.call('POST', `${t}/quarantine/${acme.messageId}/release`)).status).toBe(404);

    const envelope = { messageId: 'held-2', tenantId: acme.tenantId, userId: acme.mailboxUserId, identity: 'alice@acme.example', mailFrom: 'alice@acme.example', rcptTo: ['x@dest.example'], blobKey: 'messages/held-2.eml', size: 10, receivedAt: fx.now, clientIp: '192.0.2.9', helo: 'h' };
    await fx.blobs.put(envelope.blobKey, Buffer.from('Subject: v\r\n\r\nbody'));
    await fx.deps.quarantine?.store.add({ messageId: 'held-2', tenantId: acme.tenantId, userId: acme.mailboxUserId, envelope, kind: 'virus', symbols: [{ name: 'VIRUS_FOUND', evidence: { signature: 'Eicar-Test' } }], subject: 'v', blobKey: envelope.blobKey, quarantinedAt: fx.now });
    await fx.deps.messageLog.create({ id: 'held-2', tenantId: acme.tenantId, userId: acme.mailboxUserId, identity: 'alice@acme.example', mailFrom: 'alice@acme.example', rcptTo: ['x@dest.example'], size: 10, subject: 'v', status: 'quarantined', receivedAt: fx.now });
    expect((await fx.call('DELETE', `${t}/quarantine/held-2`, { token: acme.key })).status).toBe(204);
    expect(await fx.blobs.exists(envelope.blobKey)).toBe(false);
    expect((await fx.call('GET', `${t}/quarantine`)).body.items).toEqual([]);
  });
});

describe('held mail', () => {
  /** A deliver job of `userId` as the deliver stage would find it: held when its sender is locked or on hold. */
  async function deliverJobComesUp(userId: string, messageId: string): Promise<boolean> {
    const envelope = { messageId, tenantId: acme.tenantId, userId, identity: 'acme.example', mailFrom: 'news@acme.example', rcptTo: ['x@dest.example'], blobKey: `messages/${messageId}.eml`, size: 10, receivedAt: fx.now, clientIp: '192.0.2.9', helo: 'h' };
    await fx.blobs.put(envelope.blobKey, Buffer.from('Subject: s\r\n\r\nbody'));
    await fx.deps.messageLog.create({ id: messageId, tenantId: acme.tenantId, userId, identity: 'acme.example', mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: 10, subject: 's', status: 'queued', receivedAt: fx.now });
    return (await fx.deps.holds?.holds.holdIfSenderStopped('deliver', envelope, JSON.stringify({ envelope, attempt: 1, pending: envelope.rcptTo }))) ?? false;
  }

  it('lets the tenant hold a user, lists what is held, and releases it back to the queue once', async () => {
    const user = `${t}/users/${acme.domainUserId}/queue`;
    expect(await deliverJobComesUp(acme.domainUserId, 'q-free')).toBe(false);
    expect((await fx.call('POST', `${user}/hold`, { token: acme.key })).body).toEqual({ onHold: true, alreadyOnHold: false });
    expect(await deliverJobComesUp(acme.domainUserId, 'q-1')).toBe(true);
    const listed = await fx.call('GET', user, { token: acme.key });
    expect(listed.body).toMatchObject({ onHold: true, heldBy: `tenant-key:${acme.keyId}`, messages: [{ messageId: 'q-1', stage: 'deliver', reason: 'manual', overdue: false }] });
    expect((await fx.call('GET', `${t}/messages/q-1`)).body.message.status).toBe('held-manual');

    // Held longer than the queue's lifetime: flagged, never dropped.
    fx.now += 4 * 86_400_000;
    expect((await fx.call('GET', user)).body.messages[0].overdue).toBe(true);
    fx.now -= 4 * 86_400_000;

    const before = (await fx.queue.depth('deliver')).visible;
    expect((await fx.call('POST', `${user}/release`, { token: acme.key })).body).toEqual({ released: 1 });
    expect((await fx.call('POST', `${user}/release`, { token: acme.key })).body).toEqual({ released: 0 });
    expect((await fx.queue.depth('deliver')).visible).toBe(before + 1);
    expect((await fx.call('GET', `${t}/messages/q-1`)).body.message.status).toBe('queued');
    expect((await fx.call('GET', user)).body).toMatchObject({ onHold: false, messages: [] });
  });

  it('documents every message status the log can hold', () => {
    expect(messageStatus.options).toEqual([...MESSAGE_STATUSES]);
  });

  it('purges held mail with its files, and refuses to release while the user is locked', async () => {
    const user = `${t}/users/${acme.domainUserId}/queue`;
    await fx.call('POST', `${t}/users/${acme.domainUserId}/lock`, { body: { reason: 'compromised' } });
    expect(await deliverJobComesUp(acme.domainUserId, 'q-2')).toBe(true);
    expect((await fx.call('GET', user)).body.messages).toEqual([expect.objectContaining({ messageId: 'q-2', reason: 'locked' })]);
    expect((await fx.call('GET', `${t}/messages/q-2`)).body.message.status).toBe('held-locked');

    const refused = await fx.call('POST', `${user}/release`, { token: acme.key });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/is locked.*unlock/);
    expect((await fx.call('GET', user)).body.messages).toHaveLength(1);

    expect((await fx.call('POST', `${user}/purge`, { token: acme.key })).body).toEqual({ purged: 1 });
    expect(await fx.blobs.exists('messages/q-2.eml')).toBe(false);
    expect((await fx.call('GET', `${t}/messages/q-2`)).body.message.status).toBe('purged');
    expect((await fx.call('GET', user)).body.messages).toEqual([]);
    await fx.call('POST', `${t}/users/${acme.domainUserId}/unlock`, { body: { reason: 'cleaned' } });
  });
});

describe('suppression list', () => {
  it('lists, adds (with optional expiry) and removes recipients', async () => {
    const listed = await fx.call('GET', `${t}/suppressions`, { token: acme.key });
    expect(listed.body.items).toEqual([expect.objectContaining({ address: 'gone-acme@dest.example', source: 'manual', reason: 'asked to stop', expiresAt: null })]);
    const until = new Date(fx.now + 86_400_000).toISOString();
    const added = await fx.call('POST', `${t}/suppressions`, { token: acme.key, body: { address: 'Zed@DEST.example', expiresAt: until } });
    expect(added).toMatchObject({ status: 201, body: { address: 'Zed@dest.example', expiresAt: until } });
    expect((await fx.call('DELETE', `${t}/suppressions/${encodeURIComponent('Zed@dest.example')}`, { token: acme.key })).status).toBe(204);
    expect((await fx.call('DELETE', `${t}/suppressions/${encodeURIComponent('Zed@dest.example')}`)).status).toBe(404);
  });

  it('refuses non-addresses and expiries in the past', async () => {
    expect((await fx.call('POST', `${t}/suppressions`, { body: { address: 'nobody-at-all' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/suppressions`, { body: { address: 'a@b.example', expiresAt: '2020-01-01T00:00:00Z' } })).status).toBe(422);
    expect((await fx.call('POST', `${t}/suppressions`, { body: { address: 'a@b.example', expiresAt: 'soon' } })).status).toBe(400);
  });
});

describe('queues', () => {
  it('moves a dead-letter queue back for the operator only', async () => {
    await fx.queue.send('deliver-dlq', JSON.stringify({ envelope: { messageId: 'DEAD-1' } }));
    expect((await fx.call('POST', '/v1/queues/deliver/redrive', { token: acme.key })).status).toBe(403);
    expect(await fx.queue.depth('deliver-dlq')).toMatchObject({ visible: 1 });
    const reply = await fx.call('POST', '/v1/queues/deliver/redrive');
    expect(reply).toMatchObject({ status: 200, body: { queue: 'deliver', deadLetterQueue: 'deliver-dlq', moved: 1 } });
    expect(await fx.queue.depth('deliver-dlq')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    const back = await fx.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 30 });
    expect(back.filter((message) => message.body.includes('DEAD-1')).map((message) => message.receiveCount)).toEqual([1]);
    expect((await fx.call('POST', '/v1/queues/mail/redrive')).status).toBe(404);
  });
});

describe('store failures and secrets', () => {
  it('answers a failing suppression store with a 500 problem and a request id, not with "not on the list"', async () => {
    const broken = new ApiFixture();
    try {
      const tenant = (await broken.call('POST', '/v1/tenants', { body: { name: 'broken' } })).body;
      const list = broken.deps.suppression;
      if (!list) throw new Error('the fixture has a suppression list');
      list.remove = async () => {
        throw new Error('disk I/O error');
      };
      const reply = await broken.call('DELETE', `/v1/tenants/${tenant.id}/suppressions/${encodeURIComponent('a@dest.example')}`);
      expect(reply.status).toBe(500);
      expect(reply.headers.get('content-type')).toContain('application/problem+json');
      expect(reply.body.requestId).toEqual(expect.any(String));
      expect(JSON.stringify(reply.body)).not.toContain('disk I/O');
      // Not an address: it cannot be on the list, and the store is not asked.
      expect((await broken.call('DELETE', `/v1/tenants/${tenant.id}/suppressions/nobody`)).status).toBe(404);
    } finally {
      broken.close();
    }
  });

  it('returns only the public fields of a DKIM key, whatever else the store hands out', async () => {
    const leaky = new ApiFixture();
    try {
      const tenant = (await leaky.call('POST', '/v1/tenants', { body: { name: 'leaky' } })).body;
      await leaky.call('POST', `/v1/tenants/${tenant.id}/domains`, { body: { name: 'leaky.example' } });
      const keys = leaky.deps.dkimKeys;
      if (!keys) throw new Error('the fixture has a DKIM key store');
      const created = await leaky.call('POST', `/v1/tenants/${tenant.id}/domains/leaky.example/dkim-keys`, { body: { selector: 's1', algorithm: 'ed25519' } });
      expect(created.status).toBe(201);
      // A store whose rows carry more than the port promises (a DynamoDB item read whole, say).
      const list = keys.list.bind(keys);
      keys.list = async (domain?: string) => (await list(domain)).map((key) => ({ ...key, privateKeyPem: 'PRIVATE-KEY-PEM', dns: { ...key.dns, secret: 'x' } }));
      const listed = await leaky.call('GET', `/v1/tenants/${tenant.id}/dkim-keys`);
      expect(listed.status).toBe(200);
      expect(JSON.stringify(listed.body)).not.toContain('PRIVATE');
      expect(Object.keys(listed.body.items[0]).sort()).toEqual(['algorithm', 'createdAt', 'dns', 'domain', 'isDefault', 'publicKey', 'selector']);
      expect(Object.keys(listed.body.items[0].dns).sort()).toEqual(['name', 'value', 'zoneLine']);
    } finally {
      leaky.close();
    }
  });
});

describe('optional ports', () => {
  it('answers 501 on locks, DKIM, quarantine and suppression routes when the deployment has no such store', async () => {
    const bare = new ApiFixture({ optionalPorts: false });
    try {
      const tenant = (await bare.call('POST', '/v1/tenants', { body: { name: 'bare' } })).body;
      const requiring = allRoutes.filter((route) => route.requires);
      expect(requiring.map((route) => route.requires).sort()).toEqual(expect.arrayContaining(['dkimKeys', 'holds', 'locks', 'quarantine', 'suppression']));
      for (const route of requiring) {
        const path = route.path.replace('{tenantId}', tenant.id).replace(/\{\w+\}/g, 'x');
        const reply = await bare.call(route.method.toUpperCase(), path, route.body ? { body: {} } : {});
        expect(reply.status, `${route.method} ${route.path}`).toBe(501);
        expect(reply.body.type).toBe('urn:outpost:problem:not-implemented');
      }
      // Users still list, with lock state unknown (null).
      expect((await bare.call('GET', `/v1/tenants/${tenant.id}/users`)).status).toBe(200);
    } finally {
      bare.close();
    }
  });
});

describe('errors', () => {
  it('hides internal errors behind a 500 problem with a request id, logging the message only', async () => {
    const lines: string[] = [];
    const logger = { info: () => {}, warn: () => {}, debug: () => {}, error: (message: string, fields?: Record<string, unknown>) => lines.push(JSON.stringify({ message, ...fields })) };
    const broken = createApiApp({ ...fx.deps, logger, configStore: { ...fx.deps.configStore, listTenants: () => Promise.reject(new Error('disk on fire')) } });
    const response = await broken.request('/v1/tenants', { headers: { authorization: `Bearer ${fx.deps.operatorToken}` } });
    expect(response.status).toBe(500);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body['detail']).toContain(String(body['requestId']));
    expect(JSON.stringify(body)).not.toContain('disk on fire');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/);
    expect(lines.join('\n')).toContain('disk on fire');
    expect(lines.join('\n')).toContain(String(body['requestId']));
  });

  it('never logs bodies, passwords or tokens', async () => {
    const lines: string[] = [];
    const sink = (message: string, fields?: Record<string, unknown>) => lines.push(JSON.stringify({ message, ...fields }));
    const logged = createApiApp({ ...fx.deps, logger: { info: sink, warn: sink, error: sink, debug: sink } });
    await logged.request(`${t}/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${acme.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ identity: 'logtest@acme.example', password: 'hunter2hunter2' }),
    });
    const text = lines.join('\n');
    expect(text).toContain('/v1/tenants/{tenantId}/users');
    expect(text).not.toContain('hunter2hunter2');
    expect(text).not.toContain(acme.key);
    expect(text).not.toContain('logtest@acme.example');
  });
});

describe('mounting', () => {
  it('works inside the single node app next to /healthz, unknown /v1 paths still answering problems', async () => {
    const { Hono } = await import('hono');
    const node = new Hono();
    node.get('/healthz', (c) => c.json({ status: 'ok' }));
    node.route('/', createApiApp(fx.deps));
    expect((await node.request('/healthz')).status).toBe(200);
    const me = await node.request('/v1/me', { headers: { authorization: `Bearer ${acme.key}` } });
    expect(((await me.json()) as { tenantId: string }).tenantId).toBe(acme.tenantId);
    const unknown = await node.request('/v1/tenants/x/nothing-here', { method: 'PUT' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
  });

  it('answers CORS preflights only for the configured panel origins', async () => {
    const api = createApiApp({ ...fx.deps, corsOrigins: ['https://panel.example'] });
    const preflight = (origin: string) =>
      api.request('/v1/me', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect((await preflight('https://panel.example')).headers.get('access-control-allow-origin')).toBe('https://panel.example');
    expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
    const plain = await createApiApp(fx.deps).request('/v1/me', { method: 'OPTIONS', headers: { origin: 'https://panel.example' } });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('ceilings, domain verification and the audit log', () => {
  it('answers each of their routes', async () => {
    expect((await fx.call('PUT', `${t}/ceilings`, { body: { mailsPerHour: 5000 } })).body).toEqual({ ceilings: { mailsPerHour: 5000 } });
    expect((await fx.call('GET', `${t}/ceilings`, { token: acme.key })).body).toEqual({ ceilings: { mailsPerHour: 5000 } });
    expect((await fx.call('PUT', `${t}/ceilings`, { body: {} })).status).toBe(200);
    // A verified domain answers as it is, without a DNS lookup.
    expect((await fx.call('POST', `${t}/domains/acme.example/verify`, { token: acme.key })).body).toMatchObject({ name: 'acme.example', state: 'verified' });
    const own = await fx.call('GET', `${t}/audit`, { token: acme.key });
    expect(own.body.items[0]).toMatchObject({ action: 'ceilings.changed', actor: 'operator', tenantId: acme.tenantId });
    expect((await fx.call('GET', '/v1/audit')).body.items.length).toBeGreaterThan(0);
  });
});

describe('coverage', () => {
  it('answered every route of the table with success at least once in this file', () => {
    const missing = allRoutes.map((route) => `${route.method.toUpperCase()} ${route.path}`).filter((key) => !fx.covered.has(key));
    expect(missing).toEqual([]);
  });
});
