// /metrics over real HTTP on a running single node: a bearer token is required (http.metricsToken
// or the operator token), unless http.publicMetrics serves it to anyone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2eNode, type E2eNode } from '../helpers/e2e-node.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

const METRICS_TOKEN = 'prometheus-scrape-token-1234';

let guarded: E2eNode;
let open: E2eNode;

beforeAll(async () => {
  guarded = await startE2eNode({ config: { http: { metricsToken: METRICS_TOKEN } } });
  open = await startE2eNode({ config: { http: { publicMetrics: true } } });
});

afterAll(async () => {
  await Promise.all([guarded?.stop(), open?.stop()]);
});

const scrape = (node: E2eNode, authorization?: string) =>
  fetch(`http://127.0.0.1:${node.node.ports.http}/metrics`, { headers: authorization === undefined ? {} : { authorization } });

describe('/metrics', () => {
  it('answers 401 with a problem and a Bearer challenge without a token or with a wrong one', async () => {
    for (const authorization of [undefined, '', 'Bearer', 'Bearer wrong-token-0123456789', `Bearer ${METRICS_TOKEN}x`, `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}`]) {
      const response = await scrape(guarded, authorization);
      expect(response.status, String(authorization)).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      const body = await response.text();
      expect(body).toContain('"status":401');
      expect(body).not.toMatch(/^outpost_/m);
    }
  });

  it('serves the metrics for the metrics token and for the operator token', async () => {
    for (const token of [METRICS_TOKEN, guarded.node.operatorToken.token]) {
      const response = await scrape(guarded, `Bearer ${token}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await response.text()).toMatch(/^outpost_smtp_sessions_active 0$/m);
    }
  });

  it('serves them to anyone with http.publicMetrics', async () => {
    const response = await scrape(open);
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^outpost_smtp_sessions_active 0$/m);
  });
});
