// Lambda entry of the API (API Gateway HTTP API, payload 2.0): the same hono app as on the single
// node. The app is built on the first request; if the stores cannot be built, the request gets a
// problem response (503) instead of an opaque Lambda error.
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { errorMessage } from '../../core/log.js';
import { apiDeps } from '../aws-stores.js';
import { lazily, telemetry } from '../entry.js';
import { createApiHandler } from './handler.js';

const { logger, metrics } = telemetry('api');
const app = lazily(async () => createApiHandler(await apiDeps()));

type ApiHandler = ReturnType<typeof createApiHandler>;
type HttpApiEvent = Parameters<ApiHandler>[0];
type HttpApiResult = Awaited<ReturnType<ApiHandler>>;

function problem(status: number, title: string, detail: string): HttpApiResult {
  return { statusCode: status, headers: { 'content-type': 'application/problem+json' }, body: JSON.stringify({ type: 'about:blank', title, status, detail }), isBase64Encoded: false };
}

function isHttpApiEvent(event: unknown): event is HttpApiEvent {
  if (typeof event !== 'object' || event === null) return false;
  const { version, requestContext, rawPath } = event as Record<string, unknown>;
  return version === '2.0' && typeof rawPath === 'string' && typeof requestContext === 'object' && requestContext !== null;
}

export const handler = middy(async (event: unknown, context: Context): Promise<HttpApiResult> => {
  if (!isHttpApiEvent(event)) {
    logger.error('not an API Gateway HTTP API (payload 2.0) event');
    return problem(400, 'Bad Request', 'The API takes API Gateway HTTP API events (payload format 2.0).');
  }
  let handle: ApiHandler;
  try {
    handle = await app();
  } catch (error: unknown) {
    logger.error('API unavailable: its stores could not be built', { error: errorMessage(error) });
    return problem(503, 'Service Unavailable', 'The API cannot reach its stores; try again later.');
  }
  return handle(event, context);
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
