// A pending domain is never signed for: the signer asks the config store who serves a domain, and
// a claim that was not proven serves nobody, even when a DKIM key for the domain is stored.
import { describe, expect, it } from 'vitest';
import { SqliteBatvKeyStore } from '../../../adapters/local/batv-key-store.js';
import { SqliteConfigStore } from '../../../adapters/local/config-store.js';
import { SqliteDkimKeyStore } from '../../../adapters/local/dkim-key-store.js';
import { localSecretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { addDkimKey } from '../../../core/dkim/keys.js';
import { makeOutgoingPreparer } from '../../../core/dkim/sign.js';
import { newVerificationToken } from '../../../core/domains.js';
import { builtInSettings } from '../../../core/settings.js';

const T0 = Date.UTC(2026, 10, 25, 12);

describe('signing a pending domain', () => {
  it('does not sign until the claim is verified, then signs', async () => {
    const db = openDatabase(':memory:');
    const clock = { now: () => T0 };
    const box = localSecretBoxFromKey(Buffer.alloc(32, 5));
    const config = new SqliteConfigStore(db, clock);
    const keys = new SqliteDkimKeyStore(db, box, clock);
    const tenant = await config.createTenant('acme');
    await config.claimDomain(tenant.id, 'claimed.example', newVerificationToken());
    await addDkimKey(keys, { domain: 'claimed.example', selector: 'left', now: T0 });
    const prepare = makeOutgoingPreparer({
      keys,
      settingsFor: () => builtInSettings,
      tenantOfDomain: async (domain) => (await config.getDomain(domain))?.tenantId,
      batvKeys: new SqliteBatvKeyStore(db, box),
      directSmtp: false,
      clock,
    });
    const envelope = { messageId: 'Q1', tenantId: tenant.id, userId: 'u1', identity: '203.0.114.1/32', mailFrom: 'news@claimed.example', rcptTo: ['bob@example.net'], blobKey: 'b', size: 1, receivedAt: T0, clientIp: '203.0.114.1', helo: 'h' };
    const raw = Buffer.from('From: news@claimed.example\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello\r\n');
    expect((await prepare(raw, envelope)).dkim.signed).toBe(false);
    await config.verifyDomainClaim(tenant.id, 'claimed.example');
    expect((await prepare(raw, envelope)).dkim).toMatchObject({ signed: true, domain: 'claimed.example' });
  });
});
