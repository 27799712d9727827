// The route table's vocabulary: every route is data (method, path, access, zod schemas,
// responses) plus a handler. The app registers them with hono and the OpenAPI document is
// generated from the same objects, so a route cannot exist without being documented, and the
// isolation test walks the same table.
import type { z } from 'zod';
import type { ApiKey } from '../../core/api/api-keys.js';
import type { Tenant } from '../../core/identity.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem } from './problem.js';

/**
 * public: no token. any: any valid token. operator: the operator token only (a tenant key gets
 * 403). tenant: the operator, or a key of the tenant named by `{tenantId}` (any other tenant id
 * is a 404, exactly like an id that does not exist).
 */
export type Access = 'public' | 'any' | 'operator' | 'tenant';

/** Optional ports: a route that needs one answers 501 when the deployment did not provide it. */
export type OptionalPort = 'locks' | 'dkimKeys' | 'suppression' | 'quarantine' | 'deadLetters' | 'audit' | 'holds';

export type Caller = { role: 'operator' } | { role: 'tenant'; key: ApiKey };

export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  caller: Caller;
  /** Loaded for routes under /v1/tenants/{tenantId}, after the access check. */
  tenant: Tenant;
  deps: ApiDeps;
  now: number;
}

export interface ApiReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

export interface RouteDef<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  operationId: string;
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI style: /v1/tenants/{tenantId}/users/{userId}. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  requires?: OptionalPort;
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
  handle(ctx: RouteContext<z.output<P>, z.output<Q>, z.output<B>>): Promise<ApiReply>;
}

/** A route with its types erased, as kept in the table. */
export interface Route {
  operationId: string;
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  requires?: OptionalPort;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  responses: Record<number, ResponseSpec>;
  handle(ctx: RouteContext<unknown, unknown, unknown>): Promise<ApiReply>;
}

export function defineRoute<P extends z.ZodType = z.ZodUndefined, Q extends z.ZodType = z.ZodUndefined, B extends z.ZodType = z.ZodUndefined>(
  def: RouteDef<P, Q, B>,
): Route {
  // The app parses params, query and body with these very schemas before calling `handle`.
  return def as unknown as Route;
}

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : iso(ms));

/**
 * Pages through a list sorted by a unique key: the cursor is the key of the last item shown.
 * Lists held by the config store are small (tenants, users, domains), so paging happens here.
 */
export function paginate<T>(items: T[], keyOf: (item: T) => string, limit: number, cursor: string | undefined): { items: T[]; nextCursor: string | null } {
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  const sorted = [...items].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const rest = after === undefined ? sorted : sorted.filter((item) => keyOf(item) > after);
  const page = rest.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page, nextCursor: rest.length > limit && last ? Buffer.from(`k:${keyOf(last)}`).toString('base64url') : null };
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('k:')) throw new ApiProblem(400, 'query.cursor: not a cursor of this list; pass `nextCursor` of the previous page unchanged');
  return text.slice(2);
}

/** The caller's name in lock histories. */
export function callerName(caller: Caller): string {
  return caller.role === 'operator' ? 'operator' : `tenant-key:${caller.key.id}`;
}

/** Whether the caller is a tenant key (bound by the operator's ceilings, locks and domain rules). */
export const isTenantKey = (caller: Caller): caller is { role: 'tenant'; key: ApiKey } => caller.role === 'tenant';
