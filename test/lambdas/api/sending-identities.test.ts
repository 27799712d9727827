// In `ses` delivery mode every domain Outpost verifies becomes an SES email identity that signs
// with Outpost's own DKIM key, and the API shows SES's verification next to Outpost's. Through the
// real API, with a real SESv2 client talking HTTP to the SES identity service of the tests, which
// verifies a domain only once the DKIM record of the key it was given is in DNS (a loopback DNS
// server, looked up with Outpost's resolver).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesClient } from '../../../adapters/aws/clients.js';
import { SesIdentities } from '../../../adapters/aws/ses-identities.js';
import { createResolver } from '../../../adapters/local/dns.js';
import { startDnsServer, TYPE, txt, type Answer, type DnsServer } from '../../helpers/dns-server.js';
import { startSesIdentityService, type SesIdentityService } from '../../helpers/ses-identities.js';
import { ApiFixture } from './api-fixture.js';

let dns: DnsServer;
let ses: SesIdentityService;
let fx: ApiFixture;
let plain: ApiFixture;
let tenantKey: string;
let base: string;

/** A TXT record of one or more strings (a 2048-bit key's record is longer than one string holds). */
function longTxt(value: string): Answer {
  const strings: Buffer[] = [];
  for (let at = 0; at < value.length; at += 255) {
    const part = Buffer.from(value.slice(at, at + 255));
    strings.push(Buffer.from([part.length]), part);
  }
  return { type: TYPE.TXT, rdata: Buffer.concat(strings) };
}

beforeAll(async () => {
  dns = await startDnsServer({});
  const resolver = createResolver({ servers: [dns.address], timeoutMs: 1000 });
  ses = await startSesIdentityService(resolver);
  const client = sesClient({ region: 'eu-west-1', endpoint: ses.endpoint, credentials: ses.credentials, maxAttempts: 1 });
  fx = new ApiFixture({ resolver, emailIdentities: new SesIdentities({ client, configurationSet: 'outpost-events' }) });
  plain = new ApiFixture({ resolver });
  const tenant = (await fx.call('POST', '/v1/tenants', { body: { name: 'shop' } })).body;
  base = `/v1/tenants/${tenant.id}`;
  tenantKey = (await fx.call('POST', `${base}/keys`, { body: { name: 'panel' } })).body.key;
});
afterAll(async () => {
  fx.close();
  plain.close();
  await ses.stop();
  await dns.stop();
});

const domainNamed = async (name: string) => ((await fx.call('GET', `${base}/domains`, { token: tenantKey })).body.items as Array<Record<string, any>>).find((d) => d.name === name);
const sesCalls = () => ses.requests.map((r) => `${r.method} ${r.path}`);

describe('a domain a tenant proves', () => {
  it('is registered with SES once it is verified and has an RSA key; SES verifies it by the DKIM record the tenant published for Outpost', async () => {
    const claimed = await fx.call('POST', `${base}/domains`, { token: tenantKey, body: { name: 'shop.example' } });
    expect(claimed.body).toMatchObject({ state: 'pending', sendingIdentity: { provider: 'ses', status: 'not-registered', sendingEnabled: false } });
    expect(ses.requests).toEqual([]);

    dns.zone['_outpost-verify.shop.example'] = [txt(claimed.body.verification.value)];
    const verified = await fx.call('POST', `${base}/domains/shop.example/verify`, { token: tenantKey });
    expect(verified.status).toBe(200);
    // No DKIM key yet: SES is not asked to create anything, and the tenant is told what to do.
    expect(verified.body).toMatchObject({ state: 'verified', sendingIdentity: { status: 'not-registered', detail: expect.stringMatching(/RSA DKIM key.*dkim-keys/) } });
    expect(sesCalls()).toEqual(['GET /v2/email/identities/shop.example']);

    const key = (await fx.call('POST', `${base}/domains/shop.example/dkim-keys`, { token: tenantKey, body: { selector: 'mail1', algorithm: 'rsa' } })).body;
    const created = ses.requests.find((r) => r.method === 'POST');
    expect(created?.body).toMatchObject({ EmailIdentity: 'shop.example', ConfigurationSetName: 'outpost-events', DkimSigningAttributes: { DomainSigningSelector: 'mail1' } });
    expect(JSON.stringify(created?.body)).not.toContain('BEGIN');

    // Registered, and SES waits for the DKIM record.
    expect((await domainNamed('shop.example'))?.sendingIdentity).toMatchObject({ status: 'pending', sendingEnabled: false, dkim: { selector: 'mail1', outpostKey: true }, detail: expect.stringContaining('mail1._domainkey.shop.example') });

    // The tenant publishes the record Outpost showed for the key: SES's check passes with it.
    dns.zone['mail1._domainkey.shop.example'] = [longTxt(key.dns.value)];
    expect((await domainNamed('shop.example'))?.sendingIdentity).toEqual({
      provider: 'ses',
      status: 'success',
      sendingEnabled: true,
      dkim: { status: 'success', selector: 'mail1', outpostKey: true },
      detail: null,
    });
    // Outpost's own state is unchanged next to it.
    expect(await domainNamed('shop.example')).toMatchObject({ name: 'shop.example', state: 'verified', verification: null });
  });

  it('follows key rotation: SES signs with the new default key and checks its record', async () => {
    const rotated = await fx.call('POST', `${base}/domains/shop.example/dkim-keys/rotate`, { token: tenantKey, body: { selector: 'mail2', algorithm: 'rsa' } });
    expect(rotated.status).toBe(201);
    const put = ses.requests.filter((r) => r.method === 'PUT');
    expect(put).toHaveLength(1);
    expect(put[0]).toMatchObject({ path: '/v2/email/identities/shop.example/dkim/signing', body: { SigningAttributesOrigin: 'EXTERNAL', SigningAttributes: { DomainSigningSelector: 'mail2' } } });
    expect((await domainNamed('shop.example'))?.sendingIdentity).toMatchObject({ status: 'pending', dkim: { selector: 'mail2' } });
    dns.zone['mail2._domainkey.shop.example'] = [longTxt(rotated.body.dns.value)];
    expect((await domainNamed('shop.example'))?.sendingIdentity).toMatchObject({ status: 'success', sendingEnabled: true, dkim: { selector: 'mail2' } });
  });

  it('is removed from SES when it leaves the tenant', async () => {
    const removed = await fx.call('DELETE', `${base}/domains/shop.example`, { token: tenantKey });
    expect(removed.status).toBe(204);
    expect(sesCalls().at(-1)).toBe('DELETE /v2/email/identities/shop.example');
    expect(ses.identities.has('shop.example')).toBe(false);
  });
});

describe('a tenant the operator deletes', () => {
  it('takes its domains\' SES identities along', async () => {
    const tenant = (await fx.call('POST', '/v1/tenants', { body: { name: 'leaving' } })).body;
    await fx.call('POST', `/v1/tenants/${tenant.id}/domains`, { body: { name: 'leaving.example' } });
    await fx.call('POST', `/v1/tenants/${tenant.id}/domains/leaving.example/dkim-keys`, { body: { algorithm: 'rsa' } });
    expect(ses.identities.has('leaving.example')).toBe(true);
    expect((await fx.call('DELETE', `/v1/tenants/${tenant.id}`)).status).toBe(204);
    expect(ses.identities.has('leaving.example')).toBe(false);
    expect(sesCalls().at(-1)).toBe('DELETE /v2/email/identities/leaving.example');
  });
});

describe('SES trouble', () => {
  it('does not undo Outpost\'s verification or key changes: the domain shows not registered, and verifying again registers it', async () => {
    // The operator adds a domain: verified at once, nothing to register without a key.
    const added = await fx.call('POST', `${base}/domains`, { body: { name: 'outage.example' } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ state: 'verified', sendingIdentity: { status: 'not-registered' } });

    // SES fails the registration: the key is Outpost's all the same.
    ses.failNext(503, 'ServiceUnavailable', 1);
    const key = await fx.call('POST', `${base}/domains/outage.example/dkim-keys`, { body: { selector: 'k1', algorithm: 'rsa' } });
    expect(key.status).toBe(201);
    expect(ses.requests.at(-1)).toMatchObject({ method: 'POST', path: '/v2/email/identities' });
    expect(ses.identities.has('outage.example')).toBe(false);
    expect((await domainNamed('outage.example'))?.sendingIdentity).toMatchObject({ status: 'not-registered', detail: expect.stringMatching(/verify again/) });

    const again = await fx.call('POST', `${base}/domains/outage.example/verify`, { token: tenantKey });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ state: 'verified', sendingIdentity: { status: 'pending', dkim: { selector: 'k1', outpostKey: true } } });
    expect(ses.identities.has('outage.example')).toBe(true);

    // SES does not answer a state question: shown as unknown, not an API error.
    ses.failNext(500, 'InternalFailure', 1);
    expect((await domainNamed('outage.example'))?.sendingIdentity).toMatchObject({ status: 'unknown', detail: expect.stringMatching(/did not answer/) });
  });

  it('an Ed25519-only domain is not registered: SES signs with RSA keys only', async () => {
    await fx.call('POST', `${base}/domains`, { body: { name: 'modern.example' } });
    await fx.call('POST', `${base}/domains/modern.example/dkim-keys`, { body: { selector: 'ed', algorithm: 'ed25519' } });
    expect(ses.identities.has('modern.example')).toBe(false);
    expect((await domainNamed('modern.example'))?.sendingIdentity).toMatchObject({ status: 'not-registered', detail: expect.stringMatching(/RSA DKIM key/) });
  });
});

describe('listing domains', () => {
  it('shows each domain with its own SES state, in the page\'s order, asking SES a few at a time', async () => {
    const tenant = (await fx.call('POST', '/v1/tenants', { body: { name: 'many' } })).body;
    const names = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'].map((label) => `${label}.many.example`);
    for (const name of names) await fx.call('POST', `/v1/tenants/${tenant.id}/domains`, { body: { name } });
    await fx.call('POST', `/v1/tenants/${tenant.id}/domains/d5.many.example/dkim-keys`, { body: { selector: 's', algorithm: 'rsa' } });
    const items = (await fx.call('GET', `/v1/tenants/${tenant.id}/domains`)).body.items as Array<{ name: string; sendingIdentity: { status: string } }>;
    expect(items.map((item) => [item.name, item.sendingIdentity.status])).toEqual(names.map((name) => [name, name.startsWith('d5.') ? 'pending' : 'not-registered']));
  });
});

describe('a deployment without SES (the single node)', () => {
  it('answers domains as before, without a sendingIdentity field and without calling anyone', async () => {
    const before = ses.requests.length;
    const tenant = (await plain.call('POST', '/v1/tenants', { body: { name: 'solo' } })).body;
    const added = await plain.call('POST', `/v1/tenants/${tenant.id}/domains`, { body: { name: 'solo.example' } });
    expect(added.body).toEqual({ name: 'solo.example', state: 'verified', createdAt: expect.any(String), verification: null });
    await plain.call('POST', `/v1/tenants/${tenant.id}/domains/solo.example/dkim-keys`, { body: { algorithm: 'rsa' } });
    expect((await plain.call('GET', `/v1/tenants/${tenant.id}/domains`)).body.items[0]).not.toHaveProperty('sendingIdentity');
    expect(ses.requests.length).toBe(before);
  });
});
