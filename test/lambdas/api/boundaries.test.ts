// What a tenant key may do to shared resources and to what the operator decided, through the real
// API: pending domains proven by a DNS TXT record (looked up on a loopback DNS server), public
// suffixes and the relay's own domain refused, sendAsAnyAddress and wide or special IP ranges kept
// for the operator, the operator's locks, virus releases and ceilings, locks that survive delete
// and re-create, and the audit log of it all. Each refusal is checked to have changed nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../../adapters/local/dns.js';
import type { Envelope } from '../../../core/ports.js';
import { startDnsServer, txt, type DnsServer } from '../../helpers/dns-server.js';
import { ApiFixture, seedTenant, type SeededTenant } from './api-fixture.js';

let dns: DnsServer;
let fx: ApiFixture;
let acme: SeededTenant;
let globex: SeededTenant;

beforeAll(async () => {
  dns = await startDnsServer({});
  fx = new ApiFixture({ resolver: createResolver({ servers: [dns.address], timeoutMs: 1000 }) });
  acme = await seedTenant(fx, 'acme', '203.0.114.0/28');
  globex = await seedTenant(fx, 'globex', '203.0.115.0/28');
});
afterAll(async () => {
  fx.close();
  await dns.stop();
});

const base = (t: SeededTenant) => `/v1/tenants/${t.tenantId}`;
const domainsOf = async (t: SeededTenant) => (await fx.call('GET', `${base(t)}/domains`)).body.items as Array<{ name: string; state: string; verification: { name: string; value: string } | null }>;
const usersOf = async (t: SeededTenant) => (await fx.call('GET', `${base(t)}/users?limit=500`)).body.items.map((u: { identity: string }) => u.identity).sort();

function expectProblem(reply: { status: number; headers: Headers; body: any }, status: number, detail: RegExp): void {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status);
  expect(reply.headers.get('content-type')).toContain('application/problem+json');
  expect(reply.body.detail).toMatch(detail);
}

describe('domains added with a tenant key', () => {
  it('are pending with the TXT record to publish; another tenant may claim the same domain; the first to prove it wins', async () => {
    const claimed = await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name: 'Bank.Example' } });
    expect(claimed.status).toBe(201);
    expect(claimed.body).toMatchObject({ name: 'bank.example', state: 'pending', verification: { type: 'TXT', name: '_outpost-verify.bank.example', value: expect.stringMatching(/^outpost-verify=[0-9a-f]{32}$/) } });
    // A pending claim blocks nobody: the real owner claims it too.
    const rival = await fx.call('POST', `${base(globex)}/domains`, { token: globex.key, body: { name: 'bank.example' } });
    expect(rival.status).toBe(201);
    expect(rival.body.verification.value).not.toBe(claimed.body.verification.value);
    // Claiming twice is a conflict for the same tenant only.
    expect((await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name: 'bank.example' } })).status).toBe(409);

    // Pending: no users, no DKIM keys, and a verify without the record changes nothing.
    expectProblem(await fx.call('POST', `${base(acme)}/users`, { token: acme.key, body: { identity: 'ceo@bank.example' } }), 422, /not one of this tenant's domains/);
    expect((await fx.call('POST', `${base(acme)}/domains/bank.example/dkim-keys`, { token: acme.key, body: { algorithm: 'ed25519' } })).status).toBe(404);
    expectProblem(await fx.call('POST', `${base(acme)}/domains/bank.example/verify`, { token: acme.key }), 422, /not proven yet.*_outpost-verify\.bank\.example/);
    // The other tenant's record proves nothing for acme.
    dns.zone['_outpost-verify.bank.example'] = [txt(rival.body.verification.value)];
    expectProblem(await fx.call('POST', `${base(acme)}/domains/bank.example/verify`, { token: acme.key }), 422, /do not hold/);
    expect(await fx.deps.configStore.getDomain('bank.example')).toBeUndefined();
    expect((await domainsOf(acme)).find((d) => d.name === 'bank.example')?.state).toBe('pending');

    // globex publishes its token and proves it: verified for globex, acme's claim dropped.
    const verified = await fx.call('POST', `${base(globex)}/domains/bank.example/verify`, { token: globex.key });
    expect(verified).toMatchObject({ status: 200, body: { name: 'bank.example', state: 'verified', verification: null } });
    expect((await fx.deps.configStore.getDomain('bank.example'))?.tenantId).toBe(globex.tenantId);
    expect((await domainsOf(acme)).map((d) => d.name)).not.toContain('bank.example');
    expect((await fx.call('POST', `${base(acme)}/domains/bank.example/verify`, { token: acme.key })).status).toBe(404);
    expect((await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name: 'bank.example' } })).status).toBe(409);
    // Now it is globex's: users of it may be made.
    expect((await fx.call('POST', `${base(globex)}/users`, { token: globex.key, body: { identity: 'ceo@bank.example' } })).status).toBe(201);
  });

  it('refuses public suffixes (to everyone) and the relay’s own domain (to tenant keys), adding nothing', async () => {
    const before = await domainsOf(acme);
    for (const name of ['co.uk', 'github.io', 'com']) {
      expect((await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name } })).status, name).toBe(name === 'com' ? 422 : 422);
      expectProblem(await fx.call('POST', `${base(acme)}/domains`, { body: { name } }), 422, name === 'com' ? /not a valid domain name|public suffix/ : /public suffix/);
    }
    for (const name of ['mx.outpost-relay.example', 'outpost-relay.example', 'bounces.outpost-relay.example']) {
      expectProblem(await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name } }), 422, /belongs to the relay itself/);
    }
    expect(await domainsOf(acme)).toEqual(before);
    // The operator vouches: its domain is verified at once, and may be the relay's own.
    const vouched = await fx.call('POST', `${base(acme)}/domains`, { body: { name: 'outpost-relay.example' } });
    expect(vouched.body).toMatchObject({ state: 'verified', verification: null });
  });

  it('a subdomain of a domain the tenant verified is verified at once; one of another tenant’s domain is pending', async () => {
    expect((await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name: 'news.acme.example' } })).body).toMatchObject({ state: 'verified' });
    expect((await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name: 'news.globex.example' } })).body).toMatchObject({ state: 'pending' });
  });

  it('withdraws a pending claim', async () => {
    await fx.call('POST', `${base(acme)}/domains`, { token: acme.key, body: { name: 'maybe.example' } });
    expect((await fx.call('DELETE', `${base(acme)}/domains/maybe.example`, { token: acme.key })).status).toBe(204);
    expect((await domainsOf(acme)).map((d) => d.name)).not.toContain('maybe.example');
  });
});

describe('sendAsAnyAddress', () => {
  it('is the operator’s to grant: a tenant key gets 403 at tenant level, user level and user creation', async () => {
    const user = `${base(acme)}/users/${acme.mailboxUserId}`;
    expectProblem(await fx.call('PATCH', `${base(acme)}/settings`, { token: acme.key, body: { sendAsAnyAddress: true } }), 403, /sendAsAnyAddress is granted by the operator/);
    expectProblem(await fx.call('PATCH', `${user}/settings`, { token: acme.key, body: { sendAsAnyAddress: true } }), 403, /operator/);
    expectProblem(await fx.call('POST', `${base(acme)}/users`, { token: acme.key, body: { identity: 'any@acme.example', settings: { sendAsAnyAddress: true } } }), 403, /operator/);
    expect((await fx.call('GET', `${base(acme)}/settings`)).body.effective.sendAsAnyAddress).toBe(false);
    expect((await fx.call('GET', user)).body.effective.sendAsAnyAddress).toBe(false);
    expect(await usersOf(acme)).not.toContain('any@acme.example');
    // Turning it off stays open to the tenant; the operator grants it.
    expect((await fx.call('PATCH', `${user}/settings`, { token: acme.key, body: { sendAsAnyAddress: false } })).status).toBe(200);
    expect((await fx.call('PATCH', `${user}/settings`, { body: { sendAsAnyAddress: true } })).body.effective.sendAsAnyAddress).toBe(true);
    await fx.call('PATCH', `${user}/settings`, { body: { sendAsAnyAddress: null } });
  });
});

describe('IP users made with a tenant key', () => {
  it('are at most a /24 (IPv6 /56) outside loopback, private, link-local, multicast and reserved ranges', async () => {
    const before = await usersOf(acme);
    const refused = {
      '127.0.0.0/16': /wider than \/24/,
      '127.0.0.1': /loopback/,
      '2001:db8::/32': /wider than \/56/,
      '2001:db8::/64': /documentation/,
      '10.1.2.0/24': /private/,
      '192.168.1.7': /private/,
      '169.254.0.0/24': /link-local/,
      '224.0.0.0/24': /multicast/,
      '240.0.0.0/24': /reserved/,
      '0.0.0.0/24': /reserved/,
      'fe80::/64': /link-local/,
      'fd00::/56': /private/,
      '::1': /loopback/,
      '203.0.116.0/23': /wider than \/24/,
      '2a00:1450::/48': /wider than \/56/,
    };
    for (const [identity, why] of Object.entries(refused)) {
      expectProblem(await fx.call('POST', `${base(acme)}/users`, { token: acme.key, body: { identity } }), 422, why);
    }
    expect(await usersOf(acme)).toEqual(before);
    for (const identity of ['203.0.116.0/24', '2a00:1450:4001::/56']) {
      expect((await fx.call('POST', `${base(acme)}/users`, { token: acme.key, body: { identity } })).status, identity).toBe(201);
    }
    // The operator may still make a wider or special range, as before.
    expect((await fx.call('POST', `${base(acme)}/users`, { body: { identity: '127.0.0.0/16' } })).status).toBe(201);
  });
});

describe("the operator's word", () => {
  it('a lock placed by the operator is lifted only by the operator; an automatic lock by the tenant', async () => {
    const user = `${base(acme)}/users/${acme.domainUserId}`;
    expect((await fx.call('POST', `${user}/lock`, { body: { reason: 'abuse report #12' } })).body).toMatchObject({ locked: true, permanent: true, placedBy: 'operator' });
    expectProblem(await fx.call('POST', `${user}/unlock`, { token: acme.key, body: { reason: 'we are fine' } }), 403, /locked by the operator/);
    expect((await fx.call('GET', user)).body.lock).toMatchObject({ locked: true, placedBy: 'operator' });
    expect((await fx.call('POST', `${user}/unlock`, { body: { reason: 'resolved' } })).body).toMatchObject({ locked: false, placedBy: null });

    // The seeded automatic lock (RATE_LIMIT_HOUR) stays the tenant's to lift.
    const auto = `${base(acme)}/users/${acme.mailboxUserId}`;
    expect((await fx.call('GET', auto)).body.lock).toMatchObject({ locked: true, placedBy: null });
    expect((await fx.call('POST', `${auto}/unlock`, { token: acme.key, body: { reason: 'cleaned up' } })).body.locked).toBe(false);

    // The operator locking an automatically locked user takes the lock over.
    await fx.deps.locks?.lockAfterAbuse(acme.mailboxUserId, [{ name: 'SPAM_VERDICTS', evidence: {} }]);
    expect((await fx.call('POST', `${auto}/lock`, { body: { reason: 'second time' } })).body).toMatchObject({ locked: true, placedBy: 'operator' });
    expect((await fx.call('POST', `${auto}/unlock`, { token: acme.key, body: { reason: 'x' } })).status).toBe(403);
    await fx.call('POST', `${auto}/unlock`, { body: { reason: 'operator lifts it' } });
  });

  it('a virus verdict is released by the operator only', async () => {
    const envelope: Envelope = { messageId: 'virus-1', tenantId: acme.tenantId, userId: acme.mailboxUserId, identity: 'alice@acme.example', mailFrom: 'alice@acme.example', rcptTo: ['x@dest.example'], blobKey: 'messages/virus-1.eml', size: 10, receivedAt: fx.now, clientIp: '203.0.114.9', helo: 'h' };
    await fx.blobs.put(envelope.blobKey, Buffer.from('Subject: v\r\n\r\nbody'));
    await fx.deps.quarantine?.store.add({ messageId: 'virus-1', tenantId: acme.tenantId, userId: acme.mailboxUserId, envelope, kind: 'virus', symbols: [{ name: 'VIRUS_FOUND', evidence: { signature: 'Eicar-Test' } }], subject: 'v', blobKey: envelope.blobKey, quarantinedAt: fx.now });
    await fx.deps.messageLog.create({ id: 'virus-1', tenantId: acme.tenantId, userId: acme.mailboxUserId, identity: 'alice@acme.example', mailFrom: 'alice@acme.example', rcptTo: ['x@dest.example'], size: 10, subject: 'v', status: 'quarantined', receivedAt: fx.now });
    const depth = (await fx.queue.depth('deliver')).visible;
    expectProblem(await fx.call('POST', `${base(acme)}/quarantine/virus-1/release`, { token: acme.key }), 403, /virus; only the operator/);
    expect((await fx.call('GET', `${base(acme)}/quarantine/virus-1`)).status).toBe(200);
    expect((await fx.queue.depth('deliver')).visible).toBe(depth);
    expect((await fx.call('POST', `${base(acme)}/quarantine/virus-1/release`)).status).toBe(204);
    expect((await fx.queue.depth('deliver')).visible).toBe(depth + 1);
  });

  it('ceilings: set by the operator only; a tenant request beyond one is a problem naming it; stored values are clamped', async () => {
    const t = base(acme);
    const user = `${t}/users/${acme.mailboxUserId}`;
    // Set before the ceilings exist: "no limit" and spam delivered.
    await fx.call('PATCH', `${t}/settings`, { token: acme.key, body: { mailsPerHour: 0, blockSpam: false } });
    expectProblem(await fx.call('PUT', `${t}/ceilings`, { token: acme.key, body: { mailsPerHour: 100000 } }), 403, /operator token/);
    expect((await fx.call('PUT', `${t}/ceilings`, { body: { mailsPerHour: 200, maxRecipientsPerDay: 1000, blockSpam: true } })).status).toBe(200);
    expect((await fx.call('GET', `${t}/ceilings`, { token: acme.key })).body.ceilings).toEqual({ mailsPerHour: 200, maxRecipientsPerDay: 1000, blockSpam: true });

    // Clamped at once, although the stored overrides are beyond them.
    const effective = (await fx.call('GET', `${t}/settings`, { token: acme.key })).body.effective;
    expect(effective).toMatchObject({ mailsPerHour: 200, blockSpam: true });
    expect((await fx.call('GET', user)).body.effective).toMatchObject({ mailsPerHour: 200, blockSpam: true });

    const before = (await fx.call('GET', `${t}/settings`)).body.overrides;
    expectProblem(await fx.call('PATCH', `${t}/settings`, { token: acme.key, body: { mailsPerHour: 0 } }), 403, /mailsPerHour=0 is above the operator's ceiling mailsPerHour=200.*no limit/);
    expectProblem(await fx.call('PATCH', `${t}/settings`, { token: acme.key, body: { mailsPerHour: 201 } }), 403, /ceiling mailsPerHour=200/);
    expectProblem(await fx.call('PATCH', `${user}/settings`, { token: acme.key, body: { blockSpam: false } }), 403, /blockSpam is forced to true/);
    expectProblem(await fx.call('PATCH', `${user}/settings`, { token: acme.key, body: { maxRecipientsPerDay: 0 } }), 403, /maxRecipientsPerDay/);
    expectProblem(await fx.call('POST', `${t}/users`, { token: acme.key, body: { identity: 'fast@acme.example', settings: { mailsPerHour: 5000 } } }), 403, /mailsPerHour/);
    expect((await fx.call('GET', `${t}/settings`)).body.overrides).toEqual(before);
    expect(await usersOf(acme)).not.toContain('fast@acme.example');
    // Within the ceilings, and removing an override, stay open.
    expect((await fx.call('PATCH', `${t}/settings`, { token: acme.key, body: { mailsPerHour: 150, blockSpam: null } })).body.effective).toMatchObject({ mailsPerHour: 150, blockSpam: true });
  });

  it('locks and counters belong to the identity: deleting and re-creating a user keeps its lock for its duration', async () => {
    const t = base(acme);
    const made = await fx.call('POST', `${t}/users`, { token: acme.key, body: { identity: 'spammer@acme.example' } });
    await fx.deps.locks?.lockAfterAbuse(made.body.id, [{ name: 'VIRUS_FOUND', evidence: {} }]);
    expect((await fx.call('DELETE', `${t}/users/${made.body.id}`, { token: acme.key })).status).toBe(204);
    const again = await fx.call('POST', `${t}/users`, { token: acme.key, body: { identity: 'spammer@acme.example' } });
    expect(again.body.id).toBe(made.body.id);
    expect(again.body.lock).toMatchObject({ locked: true, reasons: [{ name: 'VIRUS_FOUND' }] });
    // For its duration only: once the lock time is over the timed unlock applies as usual.
    fx.now += 61 * 60_000;
    expect((await fx.call('GET', `${t}/users/${again.body.id}`)).body.lock.locked).toBe(false);
  });
});

describe('the audit log', () => {
  it('records who did what; a tenant reads its own entries, the operator all of them', async () => {
    const own = await fx.call('GET', `${base(acme)}/audit?limit=500`, { token: acme.key });
    expect(own.status).toBe(200);
    const entries = own.body.items as Array<{ actor: string; action: string; target: string; tenantId: string }>;
    expect(entries.every((e) => e.tenantId === acme.tenantId)).toBe(true);
    const keyActor = `tenant-key:${acme.keyId}`;
    expect(entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: keyActor, action: 'domain.claimed', target: 'bank.example' }),
        expect.objectContaining({ actor: 'operator', action: 'domain.added', target: 'outpost-relay.example' }),
        expect.objectContaining({ actor: 'operator', action: 'user.locked', target: 'acme.example' }),
        expect.objectContaining({ actor: 'operator', action: 'user.unlocked', target: 'acme.example' }),
        expect.objectContaining({ actor: keyActor, action: 'user.unlocked', target: 'alice@acme.example' }),
        expect.objectContaining({ actor: 'operator', action: 'quarantine.released', target: 'virus-1' }),
        expect.objectContaining({ actor: 'operator', action: 'ceilings.changed' }),
        expect.objectContaining({ actor: keyActor, action: 'settings.changed', target: 'tenant' }),
        expect.objectContaining({ actor: 'operator', action: 'key.created' }),
      ]),
    );
    // Refused requests left no entry.
    expect(entries.filter((e) => e.action === 'quarantine.released')).toHaveLength(1);
    const theirs = (await fx.call('GET', `${base(globex)}/audit?limit=500`, { token: globex.key })).body.items;
    expect(theirs).toEqual(expect.arrayContaining([expect.objectContaining({ action: 'domain.verified', target: 'bank.example', actor: `tenant-key:${globex.keyId}` })]));
    expect(theirs.some((e: { tenantId: string }) => e.tenantId !== globex.tenantId)).toBe(false);
    expect((await fx.call('GET', '/v1/audit', { token: acme.key })).status).toBe(403);
    const all = (await fx.call('GET', '/v1/audit?limit=2')).body;
    expect(all.items).toHaveLength(2);
    expect((await fx.call('GET', `/v1/audit?limit=2&cursor=${all.nextCursor}`)).body.items[0].at <= all.items[1].at).toBe(true);
  });
});
