// DKIM keys of the tenant's domains: create, list with the DNS record to publish, rotate, delete.
// Private keys never leave the server: the store port only hands out public data here.
import { addDkimKey, rotateDkimKey, type DkimKeyStore, type DkimPublicKey } from '../../core/dkim/keys.js';
import type { Domain, Tenant } from '../../core/identity.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { syncSendingIdentity } from './sending-identities.js';
import { defineRoute, iso, paginate, type Route } from './route.js';
import { createDkimKeyBody, dkimKeyParams, dkimKeySchema, domainParams, pageOf, pageQuery, rotateDkimKeyBody, tenantParams } from './schemas.js';
import { z } from 'zod';

function dkimOf(deps: ApiDeps): DkimKeyStore {
  if (!deps.dkimKeys) throw new ApiProblem(501, 'DKIM keys are not available in this deployment');
  return deps.dkimKeys;
}

async function domainOf(deps: ApiDeps, tenant: Tenant, name: string): Promise<Domain> {
  const domain = await deps.configStore.getDomain(name.trim().toLowerCase());
  if (!domain || domain.tenantId !== tenant.id) throw notFound(`tenant ${tenant.id} has no domain ${name}`);
  return domain;
}

// Field by field, never a spread: whatever else a store's row holds stays on the server.
const presentKey = (key: DkimPublicKey) => ({
  domain: key.domain,
  selector: key.selector,
  algorithm: key.algorithm,
  publicKey: key.publicKey,
  isDefault: key.isDefault,
  createdAt: iso(key.createdAt),
  dns: { name: key.dns.name, value: key.dns.value, zoneLine: key.dns.zoneLine },
});

export const dkimRoutes: Route[] = [
  defineRoute({
    operationId: 'listDkimKeys',
    method: 'get',
    path: '/v1/tenants/{tenantId}/dkim-keys',
    tag: 'dkim',
    summary: "DKIM keys of the tenant's domains, each with the DNS TXT record to publish",
    access: 'tenant',
    requires: 'dkimKeys',
    params: tenantParams,
    query: pageQuery.extend({ domain: z.string().min(1).max(253).optional().describe('Only this domain') }),
    responses: { 200: { description: 'A page of keys, by domain and selector', schema: pageOf(dkimKeySchema) } },
    handle: async ({ tenant, query, deps }) => {
      const domains = query.domain ? [await domainOf(deps, tenant, query.domain)] : await deps.configStore.listDomains(tenant.id);
      const keys = (await Promise.all(domains.map((domain) => dkimOf(deps).list(domain.name)))).flat();
      const page = paginate(keys, (key) => `${key.domain} ${key.selector}`, query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map(presentKey), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'createDkimKey',
    method: 'post',
    path: '/v1/tenants/{tenantId}/domains/{domain}/dkim-keys',
    tag: 'dkim',
    summary: 'Generate a DKIM key for a domain (RSA 2048 or Ed25519)',
    description: "The first key of a domain becomes its default. Publish `dns` before the key signs: the default key signs the domain's mail at once.",
    access: 'tenant',
    requires: 'dkimKeys',
    params: domainParams,
    body: createDkimKeyBody,
    responses: { 201: { description: 'Created', schema: dkimKeySchema }, 422: { description: 'Invalid or taken selector' } },
    handle: async ({ tenant, params, body, deps, now }) => {
      const domain = await domainOf(deps, tenant, params.domain);
      const key = await addDkimKey(dkimOf(deps), {
        domain: domain.name,
        algorithm: body.algorithm,
        now,
        ...(body.selector ? { selector: body.selector } : {}),
        ...(body.makeDefault !== undefined ? { makeDefault: body.makeDefault } : {}),
      });
      await syncSendingIdentity(deps, domain.name);
      return { status: 201, body: presentKey(key) };
    },
  }),
  defineRoute({
    operationId: 'rotateDkimKey',
    method: 'post',
    path: '/v1/tenants/{tenantId}/domains/{domain}/dkim-keys/rotate',
    tag: 'dkim',
    summary: 'Rotate: a new key becomes the default; old keys stay until deleted, so DNS can catch up',
    access: 'tenant',
    requires: 'dkimKeys',
    params: domainParams,
    body: rotateDkimKeyBody,
    responses: { 201: { description: 'The new default key', schema: dkimKeySchema }, 422: { description: 'Invalid or taken selector' } },
    handle: async ({ tenant, params, body, deps, now }) => {
      const domain = await domainOf(deps, tenant, params.domain);
      const key = await rotateDkimKey(dkimOf(deps), { domain: domain.name, algorithm: body.algorithm, now, ...(body.selector ? { selector: body.selector } : {}) });
      await syncSendingIdentity(deps, domain.name);
      return { status: 201, body: presentKey(key) };
    },
  }),
  defineRoute({
    operationId: 'deleteDkimKey',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/domains/{domain}/dkim-keys/{selector}',
    tag: 'dkim',
    summary: 'Delete a DKIM key (deleting the default makes the newest remaining key the default)',
    access: 'tenant',
    requires: 'dkimKeys',
    params: dkimKeyParams,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ tenant, params, deps }) => {
      const domain = await domainOf(deps, tenant, params.domain);
      const selector = params.selector.trim().toLowerCase();
      const keys = await dkimOf(deps).list(domain.name);
      if (!keys.some((key) => key.selector === selector)) throw notFound(`${domain.name} has no DKIM key with selector ${selector}`);
      await dkimOf(deps).remove(domain.name, selector);
      await syncSendingIdentity(deps, domain.name);
      return { status: 204 };
    },
  }),
];
