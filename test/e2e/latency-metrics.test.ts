// Where time goes, seen on /metrics of a running single node: after one message sent with
// nodemailer and delivered to smtp-sink, and one refused in DATA, the latency histograms count
// the SMTP transactions, the admission checks of MAIL FROM and RCPT TO, the scan, the delivery
// attempt and the message's age in the queue at delivery; its queue records are counted as the
// AWS entries count them. The exposition is prom-client's, behind
// the metrics token, and lists every metric of the table with its type.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS, type MetricSpec } from '../../core/metric-names.js';
import { waitFor } from '../helpers/net.js';
import { messageWithStatus, rawMessage, rawSession, rawTransaction, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

const METRICS_TOKEN = 'latency-scrape-token-0123456789';

let e2e: E2eNode;

beforeAll(async () => {
  e2e = await startE2eNode({ config: { http: { metricsToken: METRICS_TOKEN } } });
  const acme = await e2e.tenant('acme', ['acme.test']);
  await e2e.user(acme, 'alice@acme.test');
}, 30_000);

afterAll(async () => {
  await e2e?.stop();
});

async function scrape(token = METRICS_TOKEN): Promise<Response> {
  return fetch(`http://127.0.0.1:${e2e.node.ports.http}/metrics`, { headers: { authorization: `Bearer ${token}` } });
}

/** The `_count` (or `_sum`) sample of a histogram for exactly these labels; undefined when absent. */
function sample(text: string, name: string, part: 'count' | 'sum', labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(',');
  const line = text.split('\n').find((item) => item.startsWith(`${name}_${part}${wanted ? `{${wanted}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('latency histograms on /metrics', () => {
  it('count the transaction, admission, scan, delivery attempt and queue age of a delivered message', async () => {
    const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: 'bob@example.org', subject: 'timed' });
    await messageWithStatus(e2e.node, id, 'delivered');

    const response = await scrape();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();

    const counted: Array<[string, Record<string, string>]> = [
      ['outpost_smtp_transaction_duration_seconds', { outcome: 'accepted' }],
      ['outpost_admission_duration_seconds', { phase: 'mail' }],
      ['outpost_admission_duration_seconds', { phase: 'rcpt' }],
      ['outpost_scan_duration_seconds', { verdict: 'deliver' }],
      ['outpost_delivery_attempt_duration_seconds', {}],
      ['outpost_queue_age_at_delivery_seconds', { outcome: 'delivered' }],
    ];
    for (const [name, labels] of counted) {
      expect(sample(text, name, 'count', labels), `${name} ${JSON.stringify(labels)}`).toBeGreaterThan(0);
      expect(sample(text, name, 'sum', labels), `${name} ${JSON.stringify(labels)}`).toBeGreaterThan(0);
      // Cumulative buckets end with +Inf, equal to the count.
      const inf = new RegExp(`^${name}_bucket\\{le="\\+Inf"${Object.entries(labels).map(([key, value]) => `,${key}="${value}"`).join('')}\\} (\\d+)$`, 'm').exec(text)?.[1];
      expect(Number(inf), name).toBe(sample(text, name, 'count', labels));
    }
    // A message's age at delivery includes its scan and its delivery attempt.
    expect(sample(text, 'outpost_queue_age_at_delivery_seconds', 'sum', { outcome: 'delivered' })).toBeGreaterThanOrEqual(sample(text, 'outpost_delivery_attempt_duration_seconds', 'sum') ?? Infinity);
    // The counters of the same message, under their names of before.
    expect(text).toMatch(/^outpost_messages_accepted_total\{via="auth"\} 1$/m);
    expect(text).toMatch(/^outpost_message_events\{event="delivered"\} 1$/m);
    // Its queue records, counted as the AWS entries count them (the poller counts once the job returns).
    await waitFor('the deliver record counted', async () => /^outpost_messages_delivered_total 1$/m.test(await (await scrape()).text()));
    const records = await (await scrape()).text();
    expect(records).toMatch(/^outpost_messages_scanned_total 1$/m);
    expect(records).toMatch(/^outpost_record_failures_total 0$/m);
    expect(records).toMatch(/^outpost_scan_failures_total 0$/m);
  }, 30_000);

  it('times a transaction refused at DATA as refused', async () => {
    const { smtp } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
    try {
      const reply = await rawTransaction(smtp, { mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('alice@acme.test', 'bob@example.org', 'bare', [], 'a bare\nline feed') });
      expect(reply.end).toMatch(/^550 5\.6\.0/);
    } finally {
      smtp.close();
    }
    const text = await (await scrape()).text();
    expect(sample(text, 'outpost_smtp_transaction_duration_seconds', 'count', { outcome: 'refused' })).toBe(1);
    expect(text).toMatch(/^outpost_smtp_refusals_total\{phase="data",reason="BARE_LINE_ENDING"\} 1$/m);
  }, 30_000);

  it('lists every metric of the single node with its HELP and TYPE, and no metric of AWS only', async () => {
    const text = await (await scrape()).text();
    for (const [name, spec] of Object.entries(METRICS) as Array<[string, MetricSpec]>) {
      if (spec.on === 'aws') expect(text, name).not.toContain(`# TYPE ${name} `);
      else expect(text, name).toContain(`# HELP ${name} ${spec.help}\n# TYPE ${name} ${spec.type}\n`);
    }
    // Node's process metrics, under their standard names.
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  });

  it('still answers 401 without the right token, and shows nothing', async () => {
    for (const token of ['wrong-token-0123456789', `${METRICS_TOKEN}x`]) {
      const response = await scrape(token);
      expect(response.status).toBe(401);
      expect(await response.text()).not.toMatch(/_duration_seconds/);
    }
  });
});
