// Tenant removal: its API keys, DKIM keys, suppression list and quarantined messages (files
// included) go with it, then its domains and users; other tenants keep theirs; the message log
// keeps its records.
import { afterEach, describe, expect, it } from 'vitest';
import { issueApiKey } from '../../../core/api/api-keys.js';
import { removeTenant } from '../../../core/app/remove-tenant.js';
import type { Envelope } from '../../../core/ports.js';
import { freshStores, T0 } from './use-cases.fixture.js';

let stores: ReturnType<typeof freshStores>;
afterEach(() => stores.close());

async function tenantWithEverything(name: string) {
  const tenant = await stores.configStore.createTenant(name);
  const domain = `${name}.test`;
  await stores.configStore.addDomain(tenant.id, domain);
  const user = await stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: `bob@${domain}`, domain, passwordHash: null });
  await issueApiKey(stores.apiKeys, { tenantId: tenant.id, name: 'panel', now: T0 });
  await stores.dkimKeys.insert({ domain, selector: 's1', algorithm: 'ed25519', publicKey: 'pub', privateKeyPem: 'private', makeDefault: true });
  await stores.suppression.add({ tenantId: tenant.id, address: 'gone@example.org', source: 'manual', reason: 'asked', expiresAt: null });
  const messageId = `Q-${name}`;
  const envelope: Envelope = { messageId, tenantId: tenant.id, userId: user.id, identity: user.identity, mailFrom: user.identity, rcptTo: ['x@example.org'], blobKey: `messages/${messageId}.eml`, size: 10, receivedAt: T0, clientIp: '192.0.2.1', helo: 'client' };
  await stores.blobs.put(envelope.blobKey, Buffer.from('Subject: spam\r\n\r\nbuy\r\n'));
  await stores.log.create({ id: messageId, tenantId: tenant.id, userId: user.id, identity: user.identity, mailFrom: user.identity, rcptTo: envelope.rcptTo, size: 10, subject: 'spam', status: 'quarantined', receivedAt: T0 });
  await stores.quarantine.add({ messageId, tenantId: tenant.id, userId: user.id, envelope, kind: 'spam', symbols: [], subject: 'spam', blobKey: envelope.blobKey, quarantinedAt: T0 });
  return { tenant, domain, messageId, blobKey: envelope.blobKey };
}

describe('removeTenant', () => {
  it('removes everything of the tenant and nothing of another one', async () => {
    stores = freshStores();
    const acme = await tenantWithEverything('acme');
    const globex = await tenantWithEverything('globex');
    const deps = { ...stores, messageLog: stores.log, quarantine: { store: stores.quarantine, blobs: stores.blobs, queue: stores.queue } };

    await removeTenant(deps, { tenant: acme.tenant, actor: 'operator' });

    expect(await stores.configStore.getTenant(acme.tenant.id)).toBeUndefined();
    expect(await stores.configStore.getDomain(acme.domain)).toBeUndefined();
    expect(await stores.configStore.listUsers({ tenantId: acme.tenant.id })).toEqual([]);
    expect(await stores.apiKeys.list(acme.tenant.id)).toEqual([]);
    expect(await stores.dkimKeys.list(acme.domain)).toEqual([]);
    expect(await stores.suppression.list(acme.tenant.id, T0)).toEqual([]);
    expect(await stores.quarantine.get(acme.messageId)).toBeUndefined();
    expect(await stores.blobs.exists(acme.blobKey)).toBe(false);
    // The log keeps the record, with who deleted the held message.
    expect((await stores.log.get(acme.messageId))?.events.map((event) => [event.event, event.detail.by])).toEqual([['quarantine-deleted', 'operator']]);
    expect(await stores.audit.list({ limit: 5 })).toEqual([expect.objectContaining({ action: 'tenant.deleted', target: 'acme', actor: 'operator' })]);

    expect(await stores.configStore.getDomain(globex.domain)).toBeDefined();
    expect(await stores.configStore.listUsers({ tenantId: globex.tenant.id })).toHaveLength(1);
    expect(await stores.apiKeys.list(globex.tenant.id)).toHaveLength(1);
    expect(await stores.dkimKeys.list(globex.domain)).toHaveLength(1);
    expect(await stores.suppression.list(globex.tenant.id, T0)).toHaveLength(1);
    expect(await stores.quarantine.get(globex.messageId)).toBeDefined();
    expect(await stores.blobs.exists(globex.blobKey)).toBe(true);
  });
});
