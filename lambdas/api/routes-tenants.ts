// Tenants (operator), their API keys (operator), their default settings and domains.
import { issueApiKey, type ApiKey } from '../../core/api/api-keys.js';
import { normaliseDomain, type Domain, type Tenant } from '../../core/identity.js';
import { effectiveSettings, settingOverridesSchema, type SettingOverrides } from '../../core/settings.js';
import { deleteFromQuarantine } from '../../core/scan/quarantine.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { callerName, defineRoute, iso, isoOrNull, paginate, type Route } from './route.js';
import {
  addDomainBody,
  apiKeySchema,
  callerSchema,
  createApiKeyBody,
  createdApiKeySchema,
  createTenantBody,
  domainParams,
  domainSchema,
  idParam,
  pageOf,
  pageQuery,
  patchTenantBody,
  settingsPatchBody,
  settingsViewSchema,
  tenantParams,
  tenantSchema,
} from './schemas.js';

export const presentTenant = (tenant: Tenant) => ({
  id: tenant.id,
  name: tenant.name,
  suspended: tenant.suspended,
  settings: tenant.settings,
  createdAt: iso(tenant.createdAt),
});
const presentKey = (key: ApiKey) => ({ id: key.id, name: key.name, createdAt: iso(key.createdAt), lastUsedAt: isoOrNull(key.lastUsedAt) });
const presentDomain = (domain: Domain) => ({ name: domain.name, createdAt: iso(domain.createdAt) });

/** Applies a settings PATCH (null removes a key) to stored overrides, validating the result. */
export function applySettingsPatch(current: SettingOverrides, patch: Record<string, unknown>): SettingOverrides {
  const next: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return settingOverridesSchema.parse(next);
}

/** A domain that leaves a tenant takes its DKIM keys along: whoever adds it next starts clean. */
async function removeDkimKeysOf(deps: ApiDeps, domain: string): Promise<void> {
  if (!deps.dkimKeys) return;
  for (const key of await deps.dkimKeys.list(domain)) await deps.dkimKeys.remove(domain, key.selector);
}

const keyParams = tenantParams.extend({ keyId: idParam.describe('API key id') });

export const tenantRoutes: Route[] = [
  defineRoute({
    operationId: 'whoAmI',
    method: 'get',
    path: '/v1/me',
    tag: 'auth',
    summary: 'Who the bearer token belongs to (the operator, or a tenant key and its tenant)',
    access: 'any',
    responses: { 200: { description: 'The caller', schema: callerSchema } },
    handle: async ({ caller }) => ({
      status: 200,
      body: caller.role === 'operator' ? { role: 'operator', tenantId: null, keyId: null } : { role: 'tenant', tenantId: caller.key.tenantId, keyId: caller.key.id },
    }),
  }),
  defineRoute({
    operationId: 'createTenant',
    method: 'post',
    path: '/v1/tenants',
    tag: 'tenants',
    summary: 'Create a tenant',
    access: 'operator',
    body: createTenantBody,
    responses: { 201: { description: 'Created', schema: tenantSchema }, 409: { description: 'A tenant of that name exists' } },
    handle: async ({ body, deps }) => {
      const tenant = await deps.configStore.createTenant(body.name, body.settings ?? {});
      return { status: 201, body: presentTenant(tenant), headers: { Location: `/v1/tenants/${tenant.id}` } };
    },
  }),
  defineRoute({
    operationId: 'listTenants',
    method: 'get',
    path: '/v1/tenants',
    tag: 'tenants',
    summary: 'List tenants, by name',
    access: 'operator',
    query: pageQuery,
    responses: { 200: { description: 'A page of tenants', schema: pageOf(tenantSchema) } },
    handle: async ({ query, deps }) => {
      const page = paginate(await deps.configStore.listTenants(), (tenant) => tenant.name, query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map(presentTenant), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'getTenant',
    method: 'get',
    path: '/v1/tenants/{tenantId}',
    tag: 'tenants',
    summary: 'Read a tenant',
    access: 'tenant',
    params: tenantParams,
    responses: { 200: { description: 'The tenant', schema: tenantSchema } },
    handle: async ({ tenant }) => ({ status: 200, body: presentTenant(tenant) }),
  }),
  defineRoute({
    operationId: 'updateTenant',
    method: 'patch',
    path: '/v1/tenants/{tenantId}',
    tag: 'tenants',
    summary: 'Suspend or unsuspend a tenant',
    description: "A suspended tenant's users cannot send and its API keys are read-only.",
    access: 'operator',
    params: tenantParams,
    body: patchTenantBody,
    responses: { 200: { description: 'The tenant', schema: tenantSchema } },
    handle: async ({ tenant, body, deps }) => ({ status: 200, body: presentTenant(await deps.configStore.updateTenant(tenant.id, { suspended: body.suspended })) }),
  }),
  defineRoute({
    operationId: 'deleteTenant',
    method: 'delete',
    path: '/v1/tenants/{tenantId}',
    tag: 'tenants',
    summary: 'Delete a tenant with its domains, users, API keys, DKIM keys, suppression list and quarantined messages',
    description: 'The message log keeps its records (they are no longer reachable through the API).',
    access: 'operator',
    params: tenantParams,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ tenant, deps, caller }) => {
      await deps.apiKeys.revokeAll(tenant.id);
      for (const domain of await deps.configStore.listDomains(tenant.id)) await removeDkimKeysOf(deps, domain.name);
      if (deps.suppression) {
        for (const entry of await deps.suppression.list(tenant.id, Number.MIN_SAFE_INTEGER)) await deps.suppression.remove(tenant.id, entry.address);
      }
      if (deps.quarantine) {
        const q = deps.quarantine;
        for (;;) {
          const held = await q.store.list({ tenantId: tenant.id, limit: 100 });
          if (held.length === 0) break;
          for (const entry of held) {
            await deleteFromQuarantine({ quarantine: q.store, blobs: q.blobs, queue: q.queue, log: deps.messageLog, clock: deps.clock }, entry.messageId, callerName(caller));
          }
        }
      }
      await deps.configStore.deleteTenant(tenant.id);
      return { status: 204 };
    },
  }),

  defineRoute({
    operationId: 'createApiKey',
    method: 'post',
    path: '/v1/tenants/{tenantId}/keys',
    tag: 'keys',
    summary: 'Issue an API key for the tenant (the key is returned once)',
    access: 'operator',
    params: tenantParams,
    body: createApiKeyBody,
    responses: { 201: { description: 'Created; `key` is shown only now', schema: createdApiKeySchema } },
    handle: async ({ tenant, body, deps, now }) => {
      const { key, token } = await issueApiKey(deps.apiKeys, { tenantId: tenant.id, name: body.name, now });
      return { status: 201, body: { ...presentKey(key), key: token } };
    },
  }),
  defineRoute({
    operationId: 'listApiKeys',
    method: 'get',
    path: '/v1/tenants/{tenantId}/keys',
    tag: 'keys',
    summary: "List the tenant's API keys (never the keys themselves)",
    access: 'operator',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of keys', schema: pageOf(apiKeySchema) } },
    handle: async ({ tenant, query, deps }) => {
      const keys = await deps.apiKeys.list(tenant.id);
      const page = paginate(keys, (key) => `${String(key.createdAt).padStart(15, '0')}:${key.id}`, query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map(presentKey), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'revokeApiKey',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/keys/{keyId}',
    tag: 'keys',
    summary: 'Revoke an API key (it stops working at once)',
    access: 'operator',
    params: keyParams,
    responses: { 204: { description: 'Revoked' } },
    handle: async ({ tenant, params, deps }) => {
      if (!(await deps.apiKeys.revoke(tenant.id, params.keyId))) throw notFound(`tenant ${tenant.id} has no API key ${params.keyId}`);
      return { status: 204 };
    },
  }),

  defineRoute({
    operationId: 'getTenantSettings',
    method: 'get',
    path: '/v1/tenants/{tenantId}/settings',
    tag: 'settings',
    summary: "The tenant's default settings for its users",
    access: 'tenant',
    params: tenantParams,
    responses: { 200: { description: 'Overrides set at tenant level and the resulting defaults', schema: settingsViewSchema } },
    handle: async ({ tenant, deps }) => ({ status: 200, body: { overrides: tenant.settings, effective: effectiveSettings(tenant.settings, deps.defaults) } }),
  }),
  defineRoute({
    operationId: 'updateTenantSettings',
    method: 'patch',
    path: '/v1/tenants/{tenantId}/settings',
    tag: 'settings',
    summary: "Change the tenant's default settings (null removes an override)",
    access: 'tenant',
    params: tenantParams,
    body: settingsPatchBody,
    responses: { 200: { description: 'The new settings', schema: settingsViewSchema } },
    handle: async ({ tenant, body, deps }) => {
      const settings = applySettingsPatch(tenant.settings, body);
      const updated = await deps.configStore.updateTenant(tenant.id, { settings });
      return { status: 200, body: { overrides: updated.settings, effective: effectiveSettings(updated.settings, deps.defaults) } };
    },
  }),

  defineRoute({
    operationId: 'listDomains',
    method: 'get',
    path: '/v1/tenants/{tenantId}/domains',
    tag: 'domains',
    summary: "The tenant's sending domains",
    access: 'tenant',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of domains', schema: pageOf(domainSchema) } },
    handle: async ({ tenant, query, deps }) => {
      const page = paginate(await deps.configStore.listDomains(tenant.id), (domain) => domain.name, query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map(presentDomain), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'addDomain',
    method: 'post',
    path: '/v1/tenants/{tenantId}/domains',
    tag: 'domains',
    summary: 'Add a sending domain',
    access: 'tenant',
    params: tenantParams,
    body: addDomainBody,
    responses: { 201: { description: 'Added', schema: domainSchema }, 409: { description: 'The domain is already served' }, 422: { description: 'Not a domain name' } },
    handle: async ({ tenant, body, deps }) => {
      const name = normaliseDomain(body.name);
      return { status: 201, body: presentDomain(await deps.configStore.addDomain(tenant.id, name)) };
    },
  }),
  defineRoute({
    operationId: 'removeDomain',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/domains/{domain}',
    tag: 'domains',
    summary: 'Remove a sending domain and its DKIM keys (refused while users of it exist)',
    access: 'tenant',
    params: domainParams,
    responses: { 204: { description: 'Removed' }, 409: { description: 'Users of the domain exist' } },
    handle: async ({ tenant, params, deps }) => {
      const name = params.domain.trim().toLowerCase();
      const domain = await deps.configStore.getDomain(name);
      if (!domain || domain.tenantId !== tenant.id) throw notFound(`tenant ${tenant.id} has no domain ${name}`);
      const users = (await deps.configStore.listUsers({ tenantId: tenant.id })).filter((user) => user.domain === name);
      if (users.length > 0) {
        throw new ApiProblem(409, `${users.length} user(s) of ${name} exist (e.g. ${users[0]?.identity ?? ''}); delete them first`);
      }
      await deps.configStore.removeDomain(tenant.id, name);
      await removeDkimKeysOf(deps, name);
      return { status: 204 };
    },
  }),
];
