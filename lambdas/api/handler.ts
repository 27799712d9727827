// The API on Lambda behind API Gateway (REST or HTTP API): the same hono app as on the single
// node, wrapped by hono's aws-lambda adapter. The deployment builds the deps (DynamoDB stores)
// once at module scope and exports `createApiHandler(deps)` as its handler.
import { handle } from 'hono/aws-lambda';
import { createApiApp } from './app.js';
import type { ApiDeps } from './deps.js';

export function createApiHandler(deps: ApiDeps): ReturnType<typeof handle> {
  return handle(createApiApp(deps));
}
