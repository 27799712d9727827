// The same app behind API Gateway: hono's aws-lambda adapter with HTTP API (v2) and REST (v1) events.
import { afterAll, describe, expect, it } from 'vitest';
import { createApiHandler } from '../../../lambdas/api/handler.js';
import { ApiFixture, OPERATOR_TOKEN } from './api-fixture.js';

const fx = new ApiFixture();
afterAll(() => fx.close());
const handler = createApiHandler(fx.deps);
const lambdaContext = {} as never;

function httpApiEvent(method: string, path: string, headers: Record<string, string>, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers,
    requestContext: { accountId: '1', apiId: 'a', domainName: 'api.example', domainPrefix: 'api', http: { method, path, protocol: 'HTTP/1.1', sourceIp: '198.51.100.77', userAgent: 't' }, requestId: 'r', routeKey: '$default', stage: '$default', time: '', timeEpoch: 0 },
    body,
    isBase64Encoded: false,
  };
}

describe('Lambda handler', () => {
  it('serves the API to API Gateway HTTP API events', async () => {
    const created = (await handler(httpApiEvent('POST', '/v1/tenants', { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' }, JSON.stringify({ name: 'lambda-co' })) as never, lambdaContext)) as { statusCode: number; body: string };
    expect(created.statusCode).toBe(201);
    expect(JSON.parse(created.body)).toMatchObject({ name: 'lambda-co' });
    const denied = (await handler(httpApiEvent('GET', '/v1/tenants', { authorization: 'Bearer wrong' }) as never, lambdaContext)) as { statusCode: number; headers: Record<string, string> };
    expect(denied.statusCode).toBe(401);
    expect(denied.headers['content-type']).toContain('application/problem+json');
  });
});
