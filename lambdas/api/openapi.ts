// The OpenAPI 3.1 document, generated from the route table (zod schemas -> JSON Schema 2020-12,
// which is OpenAPI 3.1's schema dialect). Error responses every route can give are added here from
// the route's access and inputs, so the document lists what the app really answers.
import { z } from 'zod';
import { PROBLEM_TYPE } from './problem.js';
import type { Route } from './route.js';

type JsonObject = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', override: dropFormatPatterns }) as JsonObject;
  return rest;
}

// zod spells out `format: date-time` as a 300-character regex too; the format says it, and the
// regex repeated on every timestamp would make most of the document.
function dropFormatPatterns(ctx: { jsonSchema: Record<string, unknown> }): void {
  if (ctx.jsonSchema['format'] === 'date-time') delete ctx.jsonSchema['pattern'];
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonObject[] {
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const { description, ...fieldSchema } = jsonSchema(field, 'input');
    return {
      name,
      in: where,
      required: where === 'path' || !field.safeParse(undefined).success,
      ...(typeof description === 'string' ? { description } : {}),
      schema: fieldSchema,
    };
  });
}

const problem = (description: string): JsonObject => ({
  description,
  content: { [PROBLEM_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } },
});

function standardProblems(route: Route): Record<string, JsonObject> {
  const out: Record<string, JsonObject> = {};
  if (route.params || route.query || route.body) out['400'] = problem('Validation failed: `errors` lists each issue');
  if (route.access !== 'public') out['401'] = problem('Missing, malformed, revoked or wrong bearer token');
  if (route.access === 'operator') out['403'] = problem('Operator token required (tenant keys are refused)');
  else if (route.access === 'tenant' && route.method !== 'get') out['403'] = problem('The tenant is suspended: its keys are read-only');
  if (route.path.includes('{')) out['404'] = problem('No such id, or an id of another tenant (both answer alike)');
  if (route.body) {
    out['413'] = problem('Body larger than 64 KiB');
    out['415'] = problem('Body is not application/json');
  }
  if (route.access !== 'public') {
    out['429'] = {
      ...problem('Too many failed authentications from this IP (10 a minute by default)'),
      headers: { 'Retry-After': { description: 'Seconds until a new attempt is counted', schema: { type: 'integer' } } },
    };
  }
  out['500'] = problem('Internal error; the response has a request id to give the operator');
  if (route.requires) out['501'] = problem(`This deployment has no ${route.requires} store`);
  return out;
}

export function openApiDocument(routes: Route[]): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const route of routes) {
    const responses: Record<string, JsonObject> = standardProblems(route);
    for (const [status, spec] of Object.entries(route.responses)) {
      responses[status] =
        Number(status) >= 400
          ? problem(spec.description)
          : { description: spec.description, ...(spec.schema ? { content: { 'application/json': { schema: jsonSchema(spec.schema, 'output') } } } : {}) };
    }
    const operation: JsonObject = {
      operationId: route.operationId,
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      'x-access': route.access,
      security: route.access === 'public' ? [] : [{ bearer: [] }],
      parameters: [...parameters(route.params, 'path'), ...parameters(route.query, 'query')],
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } } : {}),
      responses,
    };
    paths[route.path] = { ...(paths[route.path] ?? {}), [route.method]: operation };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Outpost tenant and operator API',
      version: '1.0.0',
      description:
        'Authenticate with `Authorization: Bearer <token>`: the operator token, or a tenant API key (`opk_...`) issued by the operator. ' +
        "A tenant key reaches only its own tenant: any other tenant's ids answer 404, exactly like ids that do not exist. " +
        'Lists are paged: `limit` and `cursor` in, `{ items, nextCursor }` out. Times are ISO 8601 UTC. Errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'meta', description: 'This document' },
      { name: 'auth', description: 'Who is calling' },
      { name: 'tenants', description: 'Tenants (operator only, except reading your own)' },
      { name: 'keys', description: 'Tenant API keys (operator only); a key is shown once and stored hashed' },
      { name: 'settings', description: "Tenant default settings of its outgoing users, and the operator's ceilings on them" },
      { name: 'domains', description: 'Sending domains of a tenant: verified, or pending until a DNS TXT record proves them' },
      { name: 'users', description: 'Outgoing users: mailbox (user@domain), domain, and IP ranges (smarthost)' },
      { name: 'messages', description: 'Message log search' },
      { name: 'statistics', description: 'Volumes per hour or day, refusals by reason' },
      { name: 'locks', description: 'User locks: list, lock, unlock, history' },
      { name: 'queue', description: 'Held mail of a user (locked, or put on hold): list, hold, release, purge' },
      { name: 'dkim', description: 'DKIM keys of the tenant domains with their DNS records' },
      { name: 'quarantine', description: 'Messages held by the content scan' },
      { name: 'suppression', description: 'Recipients mail is refused to' },
      { name: 'queues', description: 'Pipeline queues (operator only): redrive dead-lettered messages' },
      { name: 'audit', description: 'Who changed what: releases, unlocks, settings, ceilings, domains, keys' },
    ],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Operator token or tenant API key' } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string', description: 'What went wrong and what to do' },
            errors: {
              type: 'array',
              description: 'Validation failures: one per issue',
              items: { type: 'object', required: ['path', 'message', 'code'], properties: { path: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } } },
            },
            requestId: { type: 'string' },
          },
        },
      },
    },
    paths,
  };
}
