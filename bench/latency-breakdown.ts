// Where a message's time goes on the single node, read back from its own /metrics: sends N
// messages (nodemailer, STARTTLS + AUTH, a new connection per message, C at a time) to a node
// delivering to postfix's smtp-sink, waits until all are delivered, and prints count, mean and
// p50/p99 of each latency histogram (interpolated within buckets, as Prometheus's
// histogram_quantile does). Figures depend on the host and its load: compare stages, not runs.
//
//   npx tsx bench/latency-breakdown.ts --messages 200 --concurrency 5
import { parseArgs } from 'node:util';
import { startE2eNode, submit } from '../test/helpers/e2e-node.js';
import { waitFor } from '../test/helpers/net.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '200' }, concurrency: { type: 'string', default: '5' } } });
const messages = Number(values.messages);
const concurrency = Number(values.concurrency);

const STAGES: ReadonlyArray<readonly [string, string]> = [
  ['outpost_smtp_transaction_duration_seconds', 'outcome="accepted"'],
  ['outpost_admission_duration_seconds', 'phase="mail"'],
  ['outpost_admission_duration_seconds', 'phase="rcpt"'],
  ['outpost_scan_duration_seconds', 'verdict="deliver"'],
  ['outpost_delivery_attempt_duration_seconds', ''],
  ['outpost_queue_age_at_delivery_seconds', 'outcome="delivered"'],
];

/** The q-quantile of a histogram's cumulative buckets, linear within the bucket it falls in. */
function quantile(text: string, name: string, labels: string, q: number): number {
  const pattern = new RegExp(`^${name}_bucket\\{le="([^"]+)"${labels ? `,${labels}` : ''}\\} (\\d+)$`, 'gm');
  const buckets = [...text.matchAll(pattern)].map((match) => ({ le: match[1] === '+Inf' ? Infinity : Number(match[1]), count: Number(match[2]) }));
  const rank = q * (buckets.at(-1)?.count ?? 0);
  let previous = { le: 0, count: 0 };
  for (const bucket of buckets) {
    if (bucket.count >= rank) return bucket.le === Infinity ? previous.le : previous.le + ((bucket.le - previous.le) * (rank - previous.count)) / Math.max(1, bucket.count - previous.count);
    previous = bucket;
  }
  return Number.NaN;
}

function sample(text: string, name: string, labels: string): number {
  return Number(new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\S+)$`, 'm').exec(text)?.[1]);
}

const unlimited = { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0 };
const e2e = await startE2eNode({ config: { http: { publicMetrics: true } } });
try {
  const acme = await e2e.tenant('acme', ['acme.test'], unlimited);
  await e2e.user(acme, 'alice@acme.test', unlimited);
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${e2e.node.ports.http}/metrics`)).text();
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages) {
        const n = next++;
        await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: `r${n}@example.org`, subject: `latency ${n}` });
      }
    }),
  );
  await waitFor('every message delivered', async () => sample(await scrape(), 'outpost_queue_age_at_delivery_seconds_count', 'outcome="delivered"') === messages || undefined, { timeoutMs: 300_000, intervalMs: 200 });
  const text = await scrape();
  process.stdout.write(`${messages} messages, ${concurrency} clients at a time, all delivered in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  const ms = (seconds: number): string => `${(seconds * 1000).toFixed(1)} ms`.padStart(10);
  for (const [name, labels] of STAGES) {
    const count = sample(text, `${name}_count`, labels);
    const mean = sample(text, `${name}_sum`, labels) / count;
    process.stdout.write(`${`${name}{${labels}}`.padEnd(68)} n=${String(count).padEnd(6)} mean${ms(mean)}  p50${ms(quantile(text, name, labels, 0.5))}  p99${ms(quantile(text, name, labels, 0.99))}\n`);
  }
} finally {
  await e2e.stop();
}
