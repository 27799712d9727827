// Every metric Outpost publishes, in one table read by both deployments: the single node's
// /metrics (Prometheus, through prom-client) and the AWS entries (CloudWatch EMF, namespace
// `Outpost`, through Powertools). Operators script and alert against these names: they are a
// contract, renamed never, only added to.
//
// The CloudWatch name is derived from the Prometheus name (emfName below): without the `outpost_`
// prefix (the namespace says it) and the `_total` or `_seconds` suffix (the EMF unit says it), in
// CamelCase: outpost_scan_duration_seconds -> ScanDuration. A histogram becomes an EMF metric of
// raw values (CloudWatch computes the percentiles) in the unit given by `emfUnit`; a Prometheus
// label becomes an EMF dimension. Only names the AWS side used before this table keep their old
// CloudWatch spelling (`emf`), since dashboards and autoscaling already track them.

/** Where a metric is published: both deployments, or only one (what only that one has). */
export type Deployment = 'both' | 'single-node' | 'aws';

interface Common {
  help: string;
  labels: readonly string[];
  on: Deployment;
  /** The CloudWatch name when it differs from the derived one (kept from before the table). */
  emf?: string;
}

export interface CounterSpec extends Common {
  type: 'counter';
}

export interface GaugeSpec extends Common {
  type: 'gauge';
}

export interface HistogramSpec extends Common {
  type: 'histogram';
  /** Upper bounds in seconds, chosen for what the histogram times. */
  buckets: readonly number[];
  /** The EMF unit on AWS; the value is converted from seconds. */
  emfUnit: 'Milliseconds' | 'Seconds';
}

export type MetricSpec = CounterSpec | GaugeSpec | HistogramSpec;

export const METRICS = {
  // SMTP ingress (submission listeners and the bounce listener).
  outpost_smtp_sessions_total: { type: 'counter', help: 'SMTP sessions opened, by listener.', labels: ['listener'], on: 'both' },
  outpost_smtp_sessions_active: { type: 'gauge', help: 'SMTP sessions open now.', labels: [], on: 'both', emf: 'ActiveSessions' },
  outpost_smtp_refusals_total: { type: 'counter', help: 'SMTP refusals by phase and reason (first symbol).', labels: ['phase', 'reason'], on: 'both' },
  outpost_smtp_session_failures_total: { type: 'counter', help: 'SMTP sessions closed because of an unexpected exception, by listener.', labels: ['listener'], on: 'both' },
  outpost_smtp_connection_errors_total: { type: 'counter', help: 'Client connections that ended in a socket or TLS error, by listener and error code.', labels: ['listener', 'code'], on: 'both' },
  outpost_smtp_auth_password_checks_total: { type: 'counter', help: 'Passwords checked at AUTH, by how: hashed (scrypt) or remembered (verified right within smtp.authCacheSeconds).', labels: ['how'], on: 'both' },
  outpost_messages_accepted_total: { type: 'counter', help: 'Messages accepted (250) and queued.', labels: ['via'], on: 'both' },
  outpost_recipients_accepted_total: { type: 'counter', help: 'Recipients of accepted messages.', labels: [], on: 'both' },
  outpost_bounces_accepted_total: { type: 'counter', help: 'Bounces accepted on the bounce listener.', labels: [], on: 'both' },
  outpost_smtp_transaction_duration_seconds: {
    type: 'histogram',
    help: 'One SMTP transaction, from MAIL FROM to the answer to its DATA (the client sending the content included), by outcome (accepted: 250; refused: any other answer).',
    labels: ['outcome'],
    on: 'both',
    // A 2 KB message on a LAN takes milliseconds; megabytes over a slow link take many seconds.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    emfUnit: 'Milliseconds',
  },
  outpost_admission_duration_seconds: {
    type: 'histogram',
    help: 'The policy checks of one MAIL FROM or one RCPT TO (limits, locks, sender rules, DNS), by phase.',
    labels: ['phase'],
    on: 'both',
    // Counter reads take well under a millisecond; a DNS lookup that times out takes seconds.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    emfUnit: 'Milliseconds',
  },
  // Pipeline.
  outpost_scan_duration_seconds: {
    type: 'histogram',
    help: 'Scanning one message (virus scanner, spam engine, fingerprints), by verdict (deliver, quarantine, retry).',
    labels: ['verdict'],
    on: 'both',
    // The built-in rules take a millisecond; clamd and rspamd on a large message take seconds.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    emfUnit: 'Milliseconds',
  },
  outpost_delivery_attempt_duration_seconds: {
    type: 'histogram',
    help: 'One delivery attempt of one message to its pending recipients (DKIM signing, MX lookup, SMTP to the next hop).',
    labels: [],
    on: 'both',
    // A smarthost on the LAN answers in milliseconds; a remote MX that stalls takes minutes (timeouts).
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    emfUnit: 'Milliseconds',
  },
  outpost_queue_age_at_delivery_seconds: {
    type: 'histogram',
    help: "Time from a message's acceptance (250) to its final outcome (delivered, partially-delivered, bounced, expired), by outcome.",
    labels: ['outcome'],
    on: 'both',
    // Seconds when all goes well; hours to days when it waits through the retry schedule.
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 3 * 86_400, 5 * 86_400],
    emfUnit: 'Seconds',
  },
  // Queues, held mail, locks (the single node reads them from its stores at scrape time; on AWS
  // SQS publishes queue depths itself).
  outpost_queue_messages: { type: 'gauge', help: 'Messages in a pipeline queue, by state.', labels: ['queue', 'state'], on: 'single-node' },
  outpost_dead_letter_messages: { type: 'gauge', help: 'Messages waiting in a dead-letter queue (alert when above 0), by queue.', labels: ['queue'], on: 'single-node' },
  outpost_dead_letters_total: { type: 'counter', help: 'Messages moved to a dead-letter queue after queue.maxReceives failed receives, by queue.', labels: ['queue'], on: 'single-node' },
  outpost_damaged_entries_total: { type: 'counter', help: 'Queue entries set aside at start-up because their body or message file was damaged.', labels: ['queue'], on: 'single-node' },
  outpost_message_events: { type: 'gauge', help: 'Message log events (delivered, deferred, bounced, scanned, quarantined, ...) since the log began.', labels: ['event'], on: 'single-node' },
  outpost_queue_held: { type: 'gauge', help: 'Messages held out of the pipeline (sender locked, or put on hold), by reason.', labels: ['reason'], on: 'single-node' },
  outpost_queue_held_overdue: {
    type: 'gauge',
    help: "Held messages held longer than the queue's lifetime (the retry schedule's total); they stay held until released or purged.",
    labels: ['reason'],
    on: 'single-node',
  },
  outpost_locked_users: { type: 'gauge', help: 'Users locked now, by kind of lock.', labels: ['kind'], on: 'single-node' },
  outpost_lock_events_total: { type: 'counter', help: 'Locks, timed unlocks and manual unlocks.', labels: ['kind'], on: 'single-node' },
  outpost_bounces_dropped_total: { type: 'counter', help: 'Bounces dropped by the bounce stage (failed the virus or spam scan), by reason.', labels: ['reason'], on: 'both' },
  // Counted per queue record, by the Lambda entries and the single node's pollers alike (the
  // CloudWatch names predate this table).
  outpost_record_failures_total: { type: 'counter', help: 'Queue records of a batch that failed and will be retried.', labels: [], on: 'both' },
  outpost_scan_failures_total: { type: 'counter', help: 'Scans that failed (engine down, timeout): the message waits, undelivered.', labels: [], on: 'both' },
  outpost_locks_applied_total: { type: 'counter', help: 'Outgoing users locked automatically after abuse.', labels: [], on: 'aws' },
  outpost_messages_scanned_total: { type: 'counter', help: 'Scan jobs handled.', labels: [], on: 'both' },
  outpost_messages_delivered_total: { type: 'counter', help: 'Deliver jobs handled (one delivery attempt each).', labels: [], on: 'both' },
  outpost_bounces_handled_total: { type: 'counter', help: 'Bounce jobs handled.', labels: [], on: 'both' },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;
type NamesOf<T extends MetricSpec['type']> = { [N in MetricName]: (typeof METRICS)[N]['type'] extends T ? N : never }[MetricName];
export type CounterName = NamesOf<'counter'>;
export type GaugeName = NamesOf<'gauge'>;
export type HistogramName = NamesOf<'histogram'>;

/** The labels a metric takes: exactly those of its table entry (prom-client refuses others). */
export type LabelsOf<N extends MetricName> = { [L in (typeof METRICS)[N]['labels'][number]]: string };

/** The CloudWatch (EMF) name of a metric: see the top of this file. */
export function emfName(name: MetricName): string {
  const spec: MetricSpec = METRICS[name];
  if (spec.emf) return spec.emf;
  return name
    .replace(/^outpost_/, '')
    .replace(/_(total|seconds)$/, '')
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}

/** The CloudWatch unit of a metric and its value converted from what the core records (counts, seconds). */
export function emfValue(name: MetricName, value: number): { unit: 'Count' | 'Milliseconds' | 'Seconds'; value: number } {
  const spec: MetricSpec = METRICS[name];
  if (spec.type !== 'histogram') return { unit: 'Count', value };
  return spec.emfUnit === 'Milliseconds' ? { unit: 'Milliseconds', value: value * 1000 } : { unit: 'Seconds', value };
}
