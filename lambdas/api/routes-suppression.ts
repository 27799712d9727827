// The tenant's suppression list: recipients that mail is refused to (hard bounces, manual entries).
import type { SuppressionEntry, SuppressionList } from '../../core/suppression.js';
import { normaliseSuppressedAddress } from '../../core/suppression.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { defineRoute, iso, isoOrNull, paginate, type Route } from './route.js';
import { addSuppressionBody, pageOf, pageQuery, suppressionParams, suppressionSchema, tenantParams } from './schemas.js';

function listOf(deps: ApiDeps): SuppressionList {
  if (!deps.suppression) throw new ApiProblem(501, 'the suppression list is not available in this deployment');
  return deps.suppression;
}

const present = (entry: SuppressionEntry) => ({
  address: entry.address,
  source: entry.source,
  reason: entry.reason,
  createdAt: iso(entry.createdAt),
  expiresAt: isoOrNull(entry.expiresAt),
});

export const suppressionRoutes: Route[] = [
  defineRoute({
    operationId: 'listSuppressions',
    method: 'get',
    path: '/v1/tenants/{tenantId}/suppressions',
    tag: 'suppression',
    summary: 'Recipients on the suppression list now (mail to them is refused with 550 5.1.1), by address',
    access: 'tenant',
    requires: 'suppression',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of entries', schema: pageOf(suppressionSchema) } },
    handle: async ({ tenant, query, deps, now }) => {
      const page = paginate(await listOf(deps).list(tenant.id, now), (entry) => entry.address, query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map(present), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'addSuppression',
    method: 'post',
    path: '/v1/tenants/{tenantId}/suppressions',
    tag: 'suppression',
    summary: 'Add a recipient to the suppression list (or replace its entry)',
    access: 'tenant',
    requires: 'suppression',
    params: tenantParams,
    body: addSuppressionBody,
    responses: { 201: { description: 'The entry', schema: suppressionSchema }, 422: { description: 'Not an email address, or an expiry in the past' } },
    handle: async ({ tenant, body, deps, now }) => {
      let address: string;
      try {
        address = normaliseSuppressedAddress(body.address);
      } catch (error: unknown) {
        throw new ApiProblem(422, error instanceof Error ? error.message : 'not an email address');
      }
      const expiresAt = body.expiresAt ? Date.parse(body.expiresAt) : null;
      if (expiresAt !== null && expiresAt <= now) throw new ApiProblem(422, 'expiresAt is in the past; leave it out to suppress until removed');
      const entry = await listOf(deps).add({ tenantId: tenant.id, address, source: 'manual', reason: body.reason, expiresAt });
      return { status: 201, body: present(entry) };
    },
  }),
  defineRoute({
    operationId: 'removeSuppression',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/suppressions/{address}',
    tag: 'suppression',
    summary: 'Remove a recipient from the suppression list',
    access: 'tenant',
    requires: 'suppression',
    params: suppressionParams,
    responses: { 204: { description: 'Removed' } },
    handle: async ({ tenant, params, deps }) => {
      const missing = notFound(`${params.address} is not on the suppression list of tenant ${tenant.id}`);
      let address: string;
      try {
        address = normaliseSuppressedAddress(params.address);
      } catch {
        throw missing; // not an address: it cannot be on the list
      }
      // A failing store is a 500, not a "not found".
      if (!(await listOf(deps).remove(tenant.id, address))) throw missing;
      return { status: 204 };
    },
  }),
];
