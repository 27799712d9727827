// The audit log: a tenant reads its own entries, the operator every tenant's.
import type { AuditEntry, AuditLog } from '../../core/audit.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem } from './problem.js';
import { defineRoute, iso, type Route } from './route.js';
import { auditEntrySchema, pageOf, pageQuery, tenantParams } from './schemas.js';

function auditOf(deps: ApiDeps): AuditLog {
  if (!deps.audit) throw new ApiProblem(501, 'the audit log is not available in this deployment');
  return deps.audit;
}

const present = (entry: AuditEntry) => ({
  at: iso(entry.at),
  tenantId: entry.tenantId,
  actor: entry.actor,
  action: entry.action,
  target: entry.target,
  detail: entry.detail,
});

function decodeCursor(cursor: string): number {
  const match = /^a:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match?.[1]) throw new ApiProblem(400, 'query.cursor: not a cursor of this list; pass `nextCursor` of the previous page unchanged');
  return Number(match[1]);
}

async function page(deps: ApiDeps, tenantId: string | undefined, query: { limit: number; cursor?: string | undefined }) {
  const entries = await auditOf(deps).list({
    ...(tenantId ? { tenantId } : {}),
    ...(query.cursor ? { beforeId: decodeCursor(query.cursor) } : {}),
    limit: query.limit + 1,
  });
  const shown = entries.slice(0, query.limit);
  const last = shown[shown.length - 1];
  return { items: shown.map(present), nextCursor: entries.length > query.limit && last ? Buffer.from(`a:${last.id}`).toString('base64url') : null };
}

export const auditRoutes: Route[] = [
  defineRoute({
    operationId: 'tenantAudit',
    method: 'get',
    path: '/v1/tenants/{tenantId}/audit',
    tag: 'audit',
    summary: "Who changed what in the tenant's configuration, newest first",
    access: 'tenant',
    requires: 'audit',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of audit entries', schema: pageOf(auditEntrySchema) } },
    handle: async ({ tenant, query, deps }) => ({ status: 200, body: await page(deps, tenant.id, query) }),
  }),
  defineRoute({
    operationId: 'operatorAudit',
    method: 'get',
    path: '/v1/audit',
    tag: 'audit',
    summary: 'Every audit entry of every tenant, newest first',
    access: 'operator',
    requires: 'audit',
    query: pageQuery,
    responses: { 200: { description: 'A page of audit entries', schema: pageOf(auditEntrySchema) } },
    handle: async ({ query, deps }) => ({ status: 200, body: await page(deps, undefined, query) }),
  }),
];
