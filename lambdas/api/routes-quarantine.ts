// Quarantine: messages held by a scan verdict. The tenant sees the envelope, the header fields and
// the reasons, never the body; it can release a message (delivered as it is) or delete it.
import { deleteFromQuarantine, describeReasons, releaseFromQuarantine, type QuarantineEntry } from '../../core/scan/quarantine.js';
import type { Tenant } from '../../core/identity.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { recordAudit } from './audit.js';
import { callerName, defineRoute, iso, isTenantKey, type Route } from './route.js';
import { pageOf, pageQuery, quarantineDetailSchema, quarantineParams, quarantineSchema, tenantParams } from './schemas.js';

/** Headers larger than this are cut: they are for reading, and a hostile message may have megabytes. */
const MAX_HEADER_BYTES = 64 * 1024;

function quarantineOf(deps: ApiDeps): NonNullable<ApiDeps['quarantine']> {
  if (!deps.quarantine) throw new ApiProblem(501, 'the quarantine is not available in this deployment');
  return deps.quarantine;
}

async function entryOf(deps: ApiDeps, tenant: Tenant, messageId: string): Promise<QuarantineEntry> {
  const entry = await quarantineOf(deps).store.get(messageId);
  if (!entry || entry.tenantId !== tenant.id) throw notFound(`tenant ${tenant.id} has no quarantined message ${messageId}`);
  return entry;
}

const present = (entry: QuarantineEntry) => ({
  messageId: entry.messageId,
  userId: entry.userId,
  identity: entry.envelope.identity,
  kind: entry.kind,
  reasons: entry.symbols,
  explanation: describeReasons(entry.symbols),
  subject: entry.subject,
  mailFrom: entry.envelope.mailFrom,
  rcptTo: entry.envelope.rcptTo,
  size: entry.envelope.size,
  receivedAt: iso(entry.envelope.receivedAt),
  quarantinedAt: iso(entry.quarantinedAt),
});

/** The header fields of a raw message, unfolded, in order; the body is not looked at. */
export function headerFields(raw: Buffer): Array<{ name: string; value: string }> {
  const head = raw.subarray(0, MAX_HEADER_BYTES).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  const block = end === -1 ? head : head.slice(0, end);
  const fields: Array<{ name: string; value: string }> = [];
  for (const line of block.split(/\r?\n/)) {
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

function decodeCursor(cursor: string): { at: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^q:(\d+):(.+)$/.exec(text);
  if (!match?.[1] || !match[2]) throw new ApiProblem(400, 'query.cursor: not a cursor of this list; pass `nextCursor` of the previous page unchanged');
  return { at: Number(match[1]), id: match[2] };
}

export const quarantineRoutes: Route[] = [
  defineRoute({
    operationId: 'listQuarantine',
    method: 'get',
    path: '/v1/tenants/{tenantId}/quarantine',
    tag: 'quarantine',
    summary: 'Held messages, newest first, with their reasons',
    access: 'tenant',
    requires: 'quarantine',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of held messages', schema: pageOf(quarantineSchema) } },
    handle: async ({ tenant, query, deps }) => {
      const after = query.cursor ? decodeCursor(query.cursor) : undefined;
      // The store pages by time only; entries of the same millisecond as the cursor are filtered here.
      const fetched = await quarantineOf(deps).store.list({
        tenantId: tenant.id,
        limit: Math.min(1000, query.limit + 101),
        ...(after ? { before: after.at + 1 } : {}),
      });
      const rest = after ? fetched.filter((entry) => entry.quarantinedAt < after.at || entry.messageId < after.id) : fetched;
      const page = rest.slice(0, query.limit);
      const last = page[page.length - 1];
      const nextCursor = rest.length > query.limit && last ? Buffer.from(`q:${last.quarantinedAt}:${last.messageId}`).toString('base64url') : null;
      return { status: 200, body: { items: page.map(present), nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'getQuarantined',
    method: 'get',
    path: '/v1/tenants/{tenantId}/quarantine/{messageId}',
    tag: 'quarantine',
    summary: 'A held message: envelope, header fields and reasons (never the body)',
    access: 'tenant',
    requires: 'quarantine',
    params: quarantineParams,
    responses: { 200: { description: 'The held message', schema: quarantineDetailSchema } },
    handle: async ({ tenant, params, deps }) => {
      const entry = await entryOf(deps, tenant, params.messageId);
      const raw = await quarantineOf(deps).blobs.get(entry.blobKey);
      return { status: 200, body: { ...present(entry), headers: headerFields(raw) } };
    },
  }),
  defineRoute({
    operationId: 'releaseQuarantined',
    method: 'post',
    path: '/v1/tenants/{tenantId}/quarantine/{messageId}/release',
    tag: 'quarantine',
    summary: 'Release a held message: it is delivered as it is, without scanning it again',
    description: 'A virus verdict is released by the operator only (a tenant key gets 403).',
    access: 'tenant',
    requires: 'quarantine',
    params: quarantineParams,
    responses: { 204: { description: 'Queued for delivery' }, 403: { description: 'A virus verdict, and the caller is a tenant key' } },
    handle: async ({ tenant, params, caller, deps }) => {
      const entry = await entryOf(deps, tenant, params.messageId);
      if (entry.kind === 'virus' && isTenantKey(caller)) {
        throw new ApiProblem(403, `message ${entry.messageId} was held for a virus; only the operator can release it`);
      }
      const q = quarantineOf(deps);
      await releaseFromQuarantine({ quarantine: q.store, blobs: q.blobs, queue: q.queue, log: deps.messageLog, clock: deps.clock }, entry.messageId, callerName(caller));
      await recordAudit(deps, caller, tenant.id, 'quarantine.released', entry.messageId, { kind: entry.kind });
      return { status: 204 };
    },
  }),
  defineRoute({
    operationId: 'deleteQuarantined',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/quarantine/{messageId}',
    tag: 'quarantine',
    summary: 'Delete a held message and its stored copy',
    access: 'tenant',
    requires: 'quarantine',
    params: quarantineParams,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ tenant, params, caller, deps }) => {
      const entry = await entryOf(deps, tenant, params.messageId);
      const q = quarantineOf(deps);
      await deleteFromQuarantine({ quarantine: q.store, blobs: q.blobs, queue: q.queue, log: deps.messageLog, clock: deps.clock }, entry.messageId, callerName(caller));
      await recordAudit(deps, caller, tenant.id, 'quarantine.deleted', entry.messageId, { kind: entry.kind });
      return { status: 204 };
    },
  }),
];
