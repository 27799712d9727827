// Who may read /metrics: queue depths, locks and refusal counts describe the operator's whole
// deployment, so a scraper presents a bearer token (http.metricsToken, or the operator token),
// unless the operator chose http.publicMetrics.
import type { MiddlewareHandler } from 'hono';
import { sameSecret } from '../lambdas/api/auth.js';
import { PROBLEM_TYPE } from '../lambdas/api/problem.js';

export interface MetricsAccess {
  publicMetrics: boolean;
  metricsToken?: string;
  operatorToken: string;
}

export function metricsAccess(access: MetricsAccess): MiddlewareHandler {
  const accepted = [access.metricsToken, access.operatorToken].filter((token): token is string => typeof token === 'string' && token.length > 0);
  return async (c, next) => {
    if (access.publicMetrics) return next();
    const token = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
    // Every accepted token is compared, so the time taken does not tell which one nearly matched.
    const matches = token === undefined ? [] : accepted.map((expected) => sameSecret(token, expected));
    if (matches.includes(true)) return next();
    const problem = {
      type: 'urn:outpost:problem:unauthenticated',
      title: 'Authentication required',
      status: 401,
      detail: 'send "Authorization: Bearer <token>" with http.metricsToken or the operator token',
    };
    return c.body(JSON.stringify(problem), 401, { 'content-type': PROBLEM_TYPE, 'WWW-Authenticate': 'Bearer realm="outpost-metrics"' });
  };
}
