// Tenants (operator), their API keys (operator), their default settings and domains.
import { issueApiKey, type ApiKey } from '../../core/api/api-keys.js';
import { removeDomain } from '../../core/app/remove-domain.js';
import { removeTenant } from '../../core/app/remove-tenant.js';
import { ceilingsSchema } from '../../core/ceilings.js';
import {
  assertNotPublicSuffix,
  assertNotRelayDomain,
  domainAndParents,
  lookUpVerification,
  newVerificationToken,
  verificationName,
  verificationValue,
  type DomainClaim,
} from '../../core/domains.js';
import { normaliseDomain, type Domain, type Tenant } from '../../core/identity.js';
import { settingOverridesSchema, type SettingOverrides } from '../../core/settings.js';
import { effectiveUserSettings } from '../../core/stores.js';
import { recordAudit } from './audit.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { dropSendingIdentity, syncSendingIdentity, withSendingIdentities, withSendingIdentity } from './sending-identities.js';
import { callerName, defineRoute, iso, isoOrNull, isTenantKey, paginate, type Route } from './route.js';
import { assertWithinTenantBounds } from './tenant-bounds.js';
import {
  addDomainBody,
  ceilingsViewSchema,
  putCeilingsBody,
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
const presentDomain = (domain: Domain) => ({ name: domain.name, state: 'verified' as const, createdAt: iso(domain.createdAt), verification: null });
const presentClaim = (claim: DomainClaim) => ({
  name: claim.name,
  state: 'pending' as const,
  createdAt: iso(claim.createdAt),
  verification: { type: 'TXT' as const, name: verificationName(claim.name), value: verificationValue(claim.token) },
});

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

/** The tenant that verified the closest parent of `name`, if any. */
async function closestVerifiedParent(deps: ApiDeps, name: string): Promise<string | undefined> {
  for (const parent of domainAndParents(name).slice(1)) {
    const served = await deps.configStore.getDomain(parent);
    if (served) return served.tenantId;
  }
  return undefined;
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
    handle: async ({ body, caller, deps }) => {
      const tenant = await deps.configStore.createTenant(body.name, body.settings ?? {});
      await recordAudit(deps, caller, tenant.id, 'tenant.created', tenant.name);
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
    handle: async ({ tenant, body, caller, deps }) => {
      const updated = await deps.configStore.updateTenant(tenant.id, { suspended: body.suspended });
      await recordAudit(deps, caller, tenant.id, body.suspended ? 'tenant.suspended' : 'tenant.unsuspended', tenant.name);
      return { status: 200, body: presentTenant(updated) };
    },
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
      // The SES identities of its domains go with the tenant (a no-op where SES is not used).
      const domains = await deps.configStore.listDomains(tenant.id);
      await removeTenant(deps, { tenant, actor: callerName(caller) });
      for (const domain of domains) await dropSendingIdentity(deps, domain.name);
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
    handle: async ({ tenant, body, caller, deps, now }) => {
      const { key, token } = await issueApiKey(deps.apiKeys, { tenantId: tenant.id, name: body.name, now });
      await recordAudit(deps, caller, tenant.id, 'key.created', key.id, { name: key.name });
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
    handle: async ({ tenant, params, caller, deps }) => {
      if (!(await deps.apiKeys.revoke(tenant.id, params.keyId))) throw notFound(`tenant ${tenant.id} has no API key ${params.keyId}`);
      await recordAudit(deps, caller, tenant.id, 'key.revoked', params.keyId);
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
    handle: async ({ tenant, deps }) => ({ status: 200, body: { overrides: tenant.settings, effective: effectiveUserSettings(undefined, tenant, deps.defaults) } }),
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
    handle: async ({ tenant, body, caller, deps }) => {
      assertWithinTenantBounds(caller, tenant, body);
      const settings = applySettingsPatch(tenant.settings, body);
      const updated = await deps.configStore.updateTenant(tenant.id, { settings });
      await recordAudit(deps, caller, tenant.id, 'settings.changed', 'tenant', { changes: body });
      return { status: 200, body: { overrides: updated.settings, effective: effectiveUserSettings(undefined, updated, deps.defaults) } };
    },
  }),
  defineRoute({
    operationId: 'getCeilings',
    method: 'get',
    path: '/v1/tenants/{tenantId}/ceilings',
    tag: 'settings',
    summary: "The operator's ceilings on the tenant's settings",
    access: 'tenant',
    params: tenantParams,
    responses: { 200: { description: 'The ceilings', schema: ceilingsViewSchema } },
    handle: async ({ tenant }) => ({ status: 200, body: { ceilings: tenant.ceilings } }),
  }),
  defineRoute({
    operationId: 'putCeilings',
    method: 'put',
    path: '/v1/tenants/{tenantId}/ceilings',
    tag: 'settings',
    summary: "Set the tenant's ceilings (operator): the highest value of each limit, or the forced value of a boolean",
    description:
      'A numeric setting may not exceed its ceiling (0, "no limit", counts as above every ceiling); a boolean ceiling forces the value. Tenant keys are refused (403) values beyond them; values stored earlier are clamped in the effective settings.',
    access: 'operator',
    params: tenantParams,
    body: putCeilingsBody,
    responses: { 200: { description: 'The ceilings', schema: ceilingsViewSchema } },
    handle: async ({ tenant, body, caller, deps }) => {
      const updated = await deps.configStore.updateTenant(tenant.id, { ceilings: ceilingsSchema.parse(body) });
      await recordAudit(deps, caller, tenant.id, 'ceilings.changed', 'tenant', { ceilings: updated.ceilings });
      return { status: 200, body: { ceilings: updated.ceilings } };
    },
  }),

  defineRoute({
    operationId: 'listDomains',
    method: 'get',
    path: '/v1/tenants/{tenantId}/domains',
    tag: 'domains',
    summary: "The tenant's sending domains, verified and pending (with the TXT record that proves them)",
    access: 'tenant',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of domains', schema: pageOf(domainSchema) } },
    handle: async ({ tenant, query, deps }) => {
      const all = [...(await deps.configStore.listDomains(tenant.id)).map(presentDomain), ...(await deps.configStore.listDomainClaims(tenant.id)).map(presentClaim)];
      const page = paginate(all, (domain) => domain.name, query.limit, query.cursor);
      return { status: 200, body: { items: await withSendingIdentities(deps, page.items), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'addDomain',
    method: 'post',
    path: '/v1/tenants/{tenantId}/domains',
    tag: 'domains',
    summary: 'Add a sending domain: verified when the operator adds it, pending (to be proven by a DNS TXT record) when a tenant key does',
    description:
      'A pending domain cannot be sent from or signed for, and blocks nobody: other tenants may claim it too, the first to prove it with POST .../domains/{domain}/verify wins and the other claims are dropped. Public suffixes are refused, and so, for tenant keys, is the relay\'s own domain.',
    access: 'tenant',
    params: tenantParams,
    body: addDomainBody,
    responses: {
      201: { description: 'Added (verified) or claimed (pending)', schema: domainSchema },
      409: { description: 'The domain is already served and verified, or already pending for this tenant' },
      422: { description: "Not a domain name, a public suffix, or the relay's own domain" },
    },
    handle: async ({ tenant, body, caller, deps }) => {
      const name = normaliseDomain(body.name);
      assertNotPublicSuffix(name);
      if (isTenantKey(caller)) {
        assertNotRelayDomain(name, deps.relayHostname);
        // A subdomain of a domain the tenant verified is proven already: it controls the parent's DNS.
        if ((await closestVerifiedParent(deps, name)) === tenant.id) {
          const domain = await deps.configStore.addDomain(tenant.id, name);
          await recordAudit(deps, caller, tenant.id, 'domain.added', name, { verified: true, by: 'verified parent domain' });
          await syncSendingIdentity(deps, name);
          return { status: 201, body: await withSendingIdentity(deps, presentDomain(domain)) };
        }
        const claim = await deps.configStore.claimDomain(tenant.id, name, newVerificationToken());
        await recordAudit(deps, caller, tenant.id, 'domain.claimed', name);
        return { status: 201, body: await withSendingIdentity(deps, presentClaim(claim)) };
      }
      const domain = await deps.configStore.addDomain(tenant.id, name);
      await recordAudit(deps, caller, tenant.id, 'domain.added', name, { verified: true });
      await syncSendingIdentity(deps, name);
      return { status: 201, body: await withSendingIdentity(deps, presentDomain(domain)) };
    },
  }),
  defineRoute({
    operationId: 'verifyDomain',
    method: 'post',
    path: '/v1/tenants/{tenantId}/domains/{domain}/verify',
    tag: 'domains',
    summary: 'Prove a pending domain: looks up its TXT record now',
    description: 'Publish `_outpost-verify.<domain> TXT "outpost-verify=<token>"` (shown in the domain\'s `verification`), then call this. A verified domain answers as it is.',
    access: 'tenant',
    params: domainParams,
    responses: {
      200: { description: 'Verified', schema: domainSchema },
      404: { description: 'No such domain of the tenant' },
      409: { description: 'Another tenant proved it first; this claim is dropped' },
      422: { description: 'The TXT record is not (yet) there' },
    },
    handle: async ({ tenant, params, caller, deps }) => {
      const name = params.domain.trim().toLowerCase();
      const served = await deps.configStore.getDomain(name);
      if (served?.tenantId === tenant.id) {
        // Verified already: registering again repairs a registration that failed the first time.
        await syncSendingIdentity(deps, name);
        return { status: 200, body: await withSendingIdentity(deps, presentDomain(served)) };
      }
      const claim = await deps.configStore.getDomainClaim(tenant.id, name);
      // A claim dropped because another tenant proved the domain first is "not found", like any
      // domain that is not the tenant's: nothing about the other tenant shows.
      if (!claim) throw notFound(`tenant ${tenant.id} has no domain ${name}`);
      if (!deps.resolver) throw new ApiProblem(501, 'DNS lookups are not available in this deployment');
      const outcome = await lookUpVerification(deps.resolver, claim);
      if (!outcome.proven) {
        deps.logger?.info('domain verification failed', { tenantId: tenant.id, domain: name, why: outcome.why });
        throw new ApiProblem(422, `${name} is not proven yet: ${outcome.why}; publish ${verificationName(name)} TXT "${verificationValue(claim.token)}" and try again`);
      }
      const domain = await deps.configStore.verifyDomainClaim(tenant.id, name);
      await recordAudit(deps, caller, tenant.id, 'domain.verified', name, { record: verificationName(name) });
      await syncSendingIdentity(deps, name);
      return { status: 200, body: await withSendingIdentity(deps, presentDomain(domain)) };
    },
  }),
  defineRoute({
    operationId: 'removeDomain',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/domains/{domain}',
    tag: 'domains',
    summary: 'Remove a sending domain and its DKIM keys (refused while users of it exist), or withdraw a pending claim',
    access: 'tenant',
    params: domainParams,
    responses: { 204: { description: 'Removed' }, 409: { description: 'Users of the domain exist' } },
    handle: async ({ tenant, params, caller, deps }) => {
      const name = params.domain.trim().toLowerCase();
      if ((await removeDomain(deps, { tenant, name, actor: callerName(caller) })) === 'removed') await dropSendingIdentity(deps, name);
      return { status: 204 };
    },
  }),
];
