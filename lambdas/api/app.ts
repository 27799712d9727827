// The API as a hono app, the same on the single node (@hono/node-server) and on Lambda
// (hono/aws-lambda, see handler.ts). Each request: authenticate -> access -> path params ->
// tenant scope -> optional port -> query -> body -> handler; any failure is a problem+json.
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { z } from 'zod';
import { DkimKeyError } from '../../core/dkim/keys.js';
import { IdentityError, type Tenant } from '../../core/identity.js';
import { errorMessage } from '../../core/log.js';
import { ConflictError, NotFoundError, InvalidInputError } from '../../core/stores.js';
import { authenticate, FailedAuthLimiter } from './auth.js';
import type { ApiDeps } from './deps.js';
import { openApiDocument } from './openapi.js';
import { ApiProblem, notFound, PROBLEM_TYPE, validationProblem } from './problem.js';
import { defineRoute, type ApiReply, type Caller, type Route, type RouteContext } from './route.js';
import { apiRoutes } from './routes.js';

export type { ApiDeps } from './deps.js';

const MAX_BODY_BYTES = 64 * 1024;

/** Every route the app serves, the OpenAPI document's own route included. */
export const allRoutes: Route[] = [
  defineRoute({
    operationId: 'openApiDocument',
    method: 'get',
    path: '/v1/openapi.json',
    tag: 'meta',
    summary: 'This OpenAPI 3.1 document',
    access: 'public',
    responses: { 200: { description: 'The document', schema: z.record(z.string(), z.unknown()) } },
    handle: async () => ({ status: 200, body: openApiDocument(allRoutes) }),
  }),
  ...apiRoutes,
];

/** Converts any error to a problem; unexpected ones are logged (message only) and hidden. */
function toProblem(error: unknown, deps: ApiDeps, requestId: string): ApiProblem {
  if (error instanceof ApiProblem) return error;
  if (error instanceof z.ZodError) return validationProblem('body', error);
  if (error instanceof NotFoundError) return notFound(error.message);
  if (error instanceof ConflictError) return new ApiProblem(409, error.message);
  if (error instanceof InvalidInputError) return new ApiProblem(400, error.message);
  if (error instanceof IdentityError || error instanceof DkimKeyError) return new ApiProblem(422, error.message);
  deps.logger?.error('api request failed', { requestId, error: errorMessage(error) });
  return new ApiProblem(500, `internal error; give the operator request id ${requestId}`);
}

function problemResponse(c: Context, problem: ApiProblem, requestId: string): Response {
  const body = { ...problem.toProblem(), ...(problem.status >= 500 ? { requestId } : {}) };
  return c.body(JSON.stringify(body), problem.status as 400, { 'Content-Type': PROBLEM_TYPE, 'X-Request-Id': requestId, ...problem.extra.headers });
}

function parseInput<S extends z.ZodType>(schema: S | undefined, input: unknown, where: 'path' | 'query' | 'body'): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(input);
  if (!result.success) throw validationProblem(where, result.error);
  return result.data;
}

async function readJsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) throw new ApiProblem(415, 'send the body as JSON with "Content-Type: application/json"');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiProblem(400, 'the body is not valid JSON');
  }
}

const honoPath = (path: string): string => path.replace(/\{(\w+)\}/g, ':$1');

async function scopeTenant(deps: ApiDeps, caller: Caller, tenantId: string): Promise<Tenant> {
  // A key of another tenant must learn nothing: same answer as for an id that does not exist.
  if (caller.role === 'tenant' && caller.key.tenantId !== tenantId) throw notFound(`no tenant ${tenantId}`);
  const tenant = await deps.configStore.getTenant(tenantId);
  if (!tenant) throw notFound(`no tenant ${tenantId}`);
  return tenant;
}

async function run(route: Route, c: Context, deps: ApiDeps, limiter: FailedAuthLimiter): Promise<ApiReply> {
  const caller: Caller = route.access === 'public' ? { role: 'operator' } : await authenticate(c, deps, limiter);
  if (route.access === 'operator' && caller.role !== 'operator') throw new ApiProblem(403, 'this route needs the operator token; tenant API keys cannot use it');
  const params = parseInput(route.params, c.req.param(), 'path');
  let tenant: Tenant | undefined;
  const tenantId = typeof params === 'object' && params !== null && 'tenantId' in params ? params.tenantId : undefined;
  if (typeof tenantId === 'string') {
    tenant = await scopeTenant(deps, caller, tenantId);
    if (tenant.suspended && caller.role === 'tenant' && route.method !== 'get') {
      throw new ApiProblem(403, `tenant ${tenant.id} is suspended: its API keys are read-only; contact the operator`);
    }
  }
  if (route.requires && !deps[route.requires]) throw new ApiProblem(501, `this deployment has no ${route.requires} store, so ${route.method.toUpperCase()} ${route.path} is not available`);
  const query = parseInput(route.query, c.req.query(), 'query');
  const body = route.body ? parseInput(route.body, await readJsonBody(c), 'body') : undefined;
  const ctx: RouteContext<unknown, unknown, unknown> = {
    params,
    query,
    body,
    caller,
    deps,
    now: deps.clock.now(),
    get tenant(): Tenant {
      if (!tenant) throw new Error(`route ${route.path} has no {tenantId}; its handler cannot use the tenant`);
      return tenant;
    },
  };
  const reply = await route.handle(ctx);
  if (deps.checkResponses) checkReply(route, reply);
  return reply;
}

/** Tests: the body must match the documented schema of its status, or the document is lying. */
function checkReply(route: Route, reply: ApiReply): void {
  const spec = route.responses[reply.status];
  if (!spec) throw new Error(`${route.operationId} answered ${reply.status}, which its route does not document`);
  if (!spec.schema) {
    if (reply.body !== undefined) throw new Error(`${route.operationId} answered ${reply.status} with a body its route does not document`);
    return;
  }
  const result = spec.schema.safeParse(reply.body);
  if (!result.success) throw new Error(`${route.operationId} ${reply.status} body does not match its schema: ${result.error.message}`);
  if (spec.schema instanceof z.ZodObject) {
    // Strict check of the top level: no undocumented fields.
    const strict = spec.schema.strict().safeParse(reply.body);
    if (!strict.success) throw new Error(`${route.operationId} ${reply.status} body has undocumented fields: ${strict.error.message}`);
  }
}

export function createApiApp(deps: ApiDeps): Hono {
  const app = new Hono();
  const limiter = new FailedAuthLimiter(deps.clock, deps.authFailures?.max ?? 10, deps.authFailures?.windowMs ?? 60_000);

  if (deps.corsOrigins && deps.corsOrigins.length > 0) {
    // Only for a control panel served from another origin (AWS: static hosting apart from API Gateway).
    app.use(
      '/v1/*',
      cors({
        origin: deps.corsOrigins,
        allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        allowHeaders: ['Authorization', 'Content-Type'],
        exposeHeaders: ['Location', 'Retry-After', 'X-Request-Id'],
        maxAge: 600,
      }),
    );
  }
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => problemResponse(c, new ApiProblem(413, `the body is larger than ${MAX_BODY_BYTES} bytes`), randomUUID()),
    }),
  );

  for (const route of allRoutes) {
    app.on(route.method.toUpperCase(), honoPath(route.path), async (c) => {
      const requestId = randomUUID();
      const started = Date.now();
      let status = 500;
      try {
        const reply = await run(route, c, deps, limiter);
        status = reply.status;
        const headers = { 'X-Request-Id': requestId, ...reply.headers };
        if (reply.body === undefined) return c.body(null, reply.status as 204, headers);
        return c.json(reply.body, reply.status as 200, headers);
      } catch (error: unknown) {
        const problem = toProblem(error, deps, requestId);
        status = problem.status;
        return problemResponse(c, problem, requestId);
      } finally {
        // Method, route template and status only: never bodies, tokens or passwords.
        deps.logger?.info('api request', { requestId, method: route.method.toUpperCase(), route: route.path, status, ms: Date.now() - started });
      }
    });
  }

  // Registered as a route (not only as notFound) so that it also answers when this app is mounted
  // inside another one (the single node's), whose notFound would otherwise apply.
  const unknownRoute = (c: Context): Response =>
    problemResponse(c, notFound(`no route ${c.req.method} ${c.req.path}; the routes are listed in /v1/openapi.json`), randomUUID());
  app.all('/v1', unknownRoute);
  app.all('/v1/*', unknownRoute);
  app.notFound((c) => problemResponse(c, notFound(`no route ${c.req.method} ${c.req.path}; the routes are listed in /v1/openapi.json`), randomUUID()));
  app.onError((error, c) => {
    const requestId = randomUUID();
    return problemResponse(c, toProblem(error, deps, requestId), requestId);
  });
  return app;
}
