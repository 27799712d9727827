// Message log search and sending statistics of a tenant and its users.
import { BUCKET_MS, bucketStart, type StatsBucket, type VolumePoint } from '../../core/api/stats.js';
import type { MessageRecord } from '../../core/stores.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { defineRoute, iso, type Route } from './route.js';
import { userOf } from './routes-users.js';
import { messageDetailSchema, messageParams, pageOf, messageSchema, searchMessagesQuery, statsQuery, statsSchema, tenantParams, userParams } from './schemas.js';

const presentMessage = (message: MessageRecord) => ({
  id: message.id,
  userId: message.userId,
  identity: message.identity,
  mailFrom: message.mailFrom,
  rcptTo: message.rcptTo,
  size: message.size,
  subject: message.subject,
  status: message.status,
  receivedAt: iso(message.receivedAt),
  updatedAt: iso(message.updatedAt),
});

function timeRange(query: { from?: string | undefined; to?: string | undefined }): { from?: number; to?: number } {
  const from = query.from === undefined ? undefined : Date.parse(query.from);
  const to = query.to === undefined ? undefined : Date.parse(query.to);
  if (from !== undefined && to !== undefined && from >= to) throw new ApiProblem(400, 'query.from must be before query.to');
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

const MAX_BUCKETS: Record<StatsBucket, number> = { hour: 31 * 24, day: 400 };
const DEFAULT_SPAN: Record<StatsBucket, number> = { hour: 24, day: 30 };

async function statistics(deps: ApiDeps, tenantId: string, userId: string | undefined, query: { from?: string; to?: string; bucket: StatsBucket }, now: number) {
  const range = timeRange(query);
  const to = range.to ?? now + 1;
  // Default: the current bucket and the ones before it, whole buckets only.
  const from = range.from ?? bucketStart(to - 1, query.bucket) - (DEFAULT_SPAN[query.bucket] - 1) * BUCKET_MS[query.bucket];
  if (from >= to) throw new ApiProblem(400, 'query.from must be before query.to');
  if ((to - from) / BUCKET_MS[query.bucket] > MAX_BUCKETS[query.bucket]) {
    throw new ApiProblem(400, `at most ${MAX_BUCKETS[query.bucket]} ${query.bucket} buckets per request; narrow from/to or use bucket=day`);
  }
  const points = await deps.stats.volume({ tenantId, ...(userId ? { userId } : {}), from, to, bucket: query.bucket });
  const totals = { messages: 0, recipients: 0, sent: 0, refused: {} as Record<string, number> };
  for (const point of points) {
    totals.messages += point.messages;
    totals.recipients += point.recipients;
    totals.sent += point.sent;
    for (const [reason, count] of Object.entries(point.refused)) totals.refused[reason] = (totals.refused[reason] ?? 0) + count;
  }
  return {
    bucket: query.bucket,
    from: iso(from),
    to: iso(to),
    points: points.map((point: VolumePoint) => ({ ...point, start: iso(point.start) })),
    totals,
  };
}

export const messageRoutes: Route[] = [
  defineRoute({
    operationId: 'searchMessages',
    method: 'get',
    path: '/v1/tenants/{tenantId}/messages',
    tag: 'messages',
    summary: 'Search the message log, newest first',
    access: 'tenant',
    params: tenantParams,
    query: searchMessagesQuery,
    responses: { 200: { description: 'A page of messages', schema: pageOf(messageSchema) } },
    handle: async ({ tenant, query, deps }) => {
      const result = await deps.messageLog.search({
        tenantId: tenant.id,
        ...timeRange(query),
        ...(query.userId ? { userId: query.userId } : {}),
        ...(query.sender ? { sender: query.sender } : {}),
        ...(query.recipient ? { recipient: query.recipient } : {}),
        ...(query.status ? { status: query.status } : {}),
        limit: query.limit,
        ...(query.cursor ? { cursor: query.cursor } : {}),
      });
      return { status: 200, body: { items: result.items.map(presentMessage), nextCursor: result.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'getMessage',
    method: 'get',
    path: '/v1/tenants/{tenantId}/messages/{messageId}',
    tag: 'messages',
    summary: 'A message by queue id, with its events (received, scanned, delivered, bounced, ...)',
    access: 'tenant',
    params: messageParams,
    responses: { 200: { description: 'The message and its events', schema: messageDetailSchema } },
    handle: async ({ tenant, params, deps }) => {
      const found = await deps.messageLog.get(params.messageId);
      if (!found || found.message.tenantId !== tenant.id) throw notFound(`tenant ${tenant.id} has no message ${params.messageId}`);
      return {
        status: 200,
        body: { message: presentMessage(found.message), events: found.events.map((event) => ({ at: iso(event.at), event: event.event, detail: event.detail })) },
      };
    },
  }),
  defineRoute({
    operationId: 'tenantStats',
    method: 'get',
    path: '/v1/tenants/{tenantId}/stats',
    tag: 'statistics',
    summary: 'Mails accepted, sent and refused by reason, per hour or per day (UTC), for the whole tenant',
    description: 'Defaults: the last 24 hours (bucket=hour) or the last 30 days (bucket=day).',
    access: 'tenant',
    params: tenantParams,
    query: statsQuery,
    responses: { 200: { description: 'The series', schema: statsSchema } },
    handle: async ({ tenant, query, deps, now }) => ({ status: 200, body: await statistics(deps, tenant.id, undefined, query, now) }),
  }),
  defineRoute({
    operationId: 'userStats',
    method: 'get',
    path: '/v1/tenants/{tenantId}/users/{userId}/stats',
    tag: 'statistics',
    summary: 'Mails accepted, sent and refused by reason, per hour or per day (UTC), for one user',
    access: 'tenant',
    params: userParams,
    query: statsQuery,
    responses: { 200: { description: 'The series', schema: statsSchema } },
    handle: async ({ tenant, params, query, deps, now }) => {
      const user = await userOf(deps, tenant, params.userId);
      return { status: 200, body: await statistics(deps, tenant.id, user.id, query, now) };
    },
  }),
];
