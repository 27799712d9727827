// The SESv2 EmailIdentities adapter with a real SDK client over HTTP against the SES identity
// service of the tests: the promises of the port (idempotent register, not-registered and
// removal of unknown domains, RSA only) and what SES receives.
import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sesClient } from '../../../adapters/aws/clients.js';
import { SesIdentities, sesPrivateKey } from '../../../adapters/aws/ses-identities.js';
import { generateDkimKeyPair, type DkimSigningKey } from '../../../core/dkim/keys.js';
import { fakeResolver } from '../../helpers/fake-dns.js';
import { startSesIdentityService, type SesIdentityService } from '../../helpers/ses-identities.js';

let ses: SesIdentityService;
let identities: SesIdentities;
const zone: Parameters<typeof fakeResolver>[0] = {};

const rsaKey = async (domain: string, selector: string): Promise<DkimSigningKey> => ({ domain, selector, algorithm: 'rsa', privateKeyPem: (await generateDkimKeyPair('rsa')).privateKeyPem });

beforeAll(async () => {
  ses = await startSesIdentityService(fakeResolver(zone));
  identities = new SesIdentities({ client: sesClient({ region: 'eu-west-1', endpoint: ses.endpoint, credentials: ses.credentials, maxAttempts: 1 }), configurationSet: 'outpost-events' });
});
afterAll(() => ses.stop());

describe('SesIdentities', () => {
  it('creates a domain identity in the configuration set that signs with the given key', async () => {
    const key = await rsaKey('acme.example', 's1');
    await identities.register('acme.example', key);
    const stored = ses.identities.get('acme.example');
    expect(stored).toMatchObject({ origin: 'EXTERNAL', selector: 's1', configurationSet: 'outpost-events' });
    // SES holds the very key Outpost signs with.
    expect(stored?.privateKey && createPublicKey(stored.privateKey).export({ format: 'pem', type: 'spki' })).toBe(createPublicKey(key.privateKeyPem).export({ format: 'pem', type: 'spki' }));
  });

  it('registers a registered domain again by pointing it at the new key (never "already exists")', async () => {
    await identities.register('acme.example', await rsaKey('acme.example', 's2'));
    expect(ses.requests.slice(-2).map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v2/email/identities', 'PUT /v2/email/identities/acme.example/dkim/signing']);
    expect(ses.identities.get('acme.example')?.selector).toBe('s2');
    expect(await identities.state('acme.example')).toEqual({ status: 'pending', sendingEnabled: false, dkim: { status: 'pending', selector: 's2', outpostKey: true } });
  });

  it('reports an unknown domain as not registered and removes unknown domains without error', async () => {
    expect(await identities.state('nobody.example')).toMatchObject({ status: 'not-registered', sendingEnabled: false });
    await expect(identities.remove('nobody.example')).resolves.toBeUndefined();
    await identities.remove('acme.example');
    expect(await identities.state('acme.example')).toMatchObject({ status: 'not-registered' });
  });

  it('refuses an Ed25519 key before calling SES, and passes SES errors other than "exists" on', async () => {
    const before = ses.requests.length;
    const ed: DkimSigningKey = { domain: 'ed.example', selector: 'e', algorithm: 'ed25519', privateKeyPem: (await generateDkimKeyPair('ed25519')).privateKeyPem };
    expect(() => sesPrivateKey(ed)).toThrow(/RSA keys only/);
    await expect(identities.register('ed.example', ed)).rejects.toThrow(/RSA keys only/);
    expect(ses.requests.length).toBe(before);
    ses.failNext(400, 'LimitExceededException');
    await expect(identities.register('limit.example', await rsaKey('limit.example', 's'))).rejects.toMatchObject({ name: 'LimitExceededException' });
    ses.failNext(500, 'InternalFailure');
    await expect(identities.state('limit.example')).rejects.toThrow();
  });
});
