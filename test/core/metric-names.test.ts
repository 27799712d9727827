// The one table of metric names: Prometheus conventions on the single node, the derived
// CloudWatch names on AWS (the names the AWS side used before the table unchanged), and the
// prom-client registry the single node builds from it.
import { describe, expect, it } from 'vitest';
import { emfName, emfValue, METRICS, type MetricName, type MetricSpec } from '../../core/metric-names.js';
import { Metrics } from '../../core/metrics.js';
import { METRIC } from '../../lambdas/metric-names.js';

const entries = Object.entries(METRICS) as Array<[MetricName, MetricSpec]>;

describe('the metric table', () => {
  it('follows the Prometheus naming conventions: outpost_ prefix, _total counters, _seconds histograms', () => {
    for (const [name, spec] of entries) {
      expect(name, name).toMatch(/^outpost_[a-z][a-z0-9_]*[a-z0-9]$/);
      if (spec.type === 'counter') expect(name).toMatch(/_total$/);
      if (spec.type === 'histogram') expect(name).toMatch(/_seconds$/);
      if (spec.type === 'gauge') expect(name).not.toMatch(/_(total|seconds)$/);
      for (const label of spec.labels) expect(label).toMatch(/^[a-z][a-z_]*$/);
    }
  });

  it('gives every histogram buckets in ascending order', () => {
    for (const [name, spec] of entries) {
      if (spec.type !== 'histogram') continue;
      expect(spec.buckets.length, name).toBeGreaterThan(5);
      expect([...spec.buckets].sort((a, b) => a - b), name).toEqual([...spec.buckets]);
    }
  });

  it('derives the CloudWatch names: no prefix, no unit suffix, CamelCase; all distinct', () => {
    expect(emfName('outpost_smtp_transaction_duration_seconds')).toBe('SmtpTransactionDuration');
    expect(emfName('outpost_admission_duration_seconds')).toBe('AdmissionDuration');
    expect(emfName('outpost_scan_duration_seconds')).toBe('ScanDuration');
    expect(emfName('outpost_delivery_attempt_duration_seconds')).toBe('DeliveryAttemptDuration');
    expect(emfName('outpost_queue_age_at_delivery_seconds')).toBe('QueueAgeAtDelivery');
    expect(emfName('outpost_messages_accepted_total')).toBe('MessagesAccepted');
    const names = entries.map(([name]) => emfName(name));
    expect(new Set(names).size).toBe(names.length);
  });

  it('keeps the CloudWatch names the alarms, dashboard and autoscaling already use', () => {
    expect(METRIC).toEqual({
      recordFailures: 'RecordFailures',
      scanFailures: 'ScanFailures',
      locksApplied: 'LocksApplied',
      messagesScanned: 'MessagesScanned',
      messagesDelivered: 'MessagesDelivered',
      bouncesHandled: 'BouncesHandled',
      activeSessions: 'ActiveSessions',
    });
  });

  it('converts durations to the EMF unit of their histogram, counts stay counts', () => {
    expect(emfValue('outpost_scan_duration_seconds', 0.25)).toEqual({ unit: 'Milliseconds', value: 250 });
    expect(emfValue('outpost_queue_age_at_delivery_seconds', 90)).toEqual({ unit: 'Seconds', value: 90 });
    expect(emfValue('outpost_smtp_refusals_total', 3)).toEqual({ unit: 'Count', value: 3 });
  });
});

describe('the single node registry', () => {
  it('counts with labels, with the older help-text form too, and records histograms in seconds', async () => {
    const metrics = new Metrics();
    metrics.inc('outpost_smtp_refusals_total', { phase: 'rcpt', reason: 'RATE_LIMIT' });
    metrics.inc('outpost_smtp_refusals_total', 'any help text', { phase: 'rcpt', reason: 'RATE_LIMIT' }, 2);
    metrics.inc('outpost_recipients_accepted_total', {}, 5);
    metrics.observe('outpost_admission_duration_seconds', 0.003, { phase: 'rcpt' });
    metrics.observe('outpost_admission_duration_seconds', Number.NaN, { phase: 'rcpt' });
    const text = await metrics.render();
    expect(text).toMatch(/^outpost_smtp_refusals_total\{phase="rcpt",reason="RATE_LIMIT"\} 3$/m);
    expect(text).toMatch(/^# HELP outpost_smtp_refusals_total SMTP refusals by phase and reason \(first symbol\)\.$/m);
    expect(text).toMatch(/^outpost_recipients_accepted_total 5$/m);
    expect(text).toMatch(/^outpost_admission_duration_seconds_bucket\{le="0.0025",phase="rcpt"\} 0$/m);
    expect(text).toMatch(/^outpost_admission_duration_seconds_bucket\{le="0.005",phase="rcpt"\} 1$/m);
    expect(text).toMatch(/^outpost_admission_duration_seconds_count\{phase="rcpt"\} 1$/m);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('keeps two nodes in one process apart (a registry each, not the global one)', async () => {
    const first = new Metrics();
    const second = new Metrics();
    first.inc('outpost_bounces_accepted_total');
    expect(await first.render()).toMatch(/^outpost_bounces_accepted_total 1$/m);
    expect(await second.render()).toMatch(/^outpost_bounces_accepted_total 0$/m);
  });
});
