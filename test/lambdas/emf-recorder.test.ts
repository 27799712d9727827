// On AWS the core's counts and durations become CloudWatch EMF metrics with the names and units of
// the shared table: read back from the EMF lines Powertools writes to stdout.
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { emfRecorder } from '../../lambdas/emf-recorder.js';
import { METRICS_NAMESPACE } from '../../lambdas/metric-names.js';

interface EmfLine {
  _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [key: string]: unknown;
}

let lines: EmfLine[];

beforeEach(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  delete process.env.POWERTOOLS_DEV;
  lines = [];
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('"_aws"')) {
      for (const line of text.trim().split('\n')) lines.push(JSON.parse(line) as EmfLine);
      return true;
    }
    return write(chunk, ...(rest as []));
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

function metricOf(line: EmfLine): { name: string; unit: string; value: unknown; dimensions: string[] } {
  const definition = line._aws.CloudWatchMetrics[0];
  const metric = definition?.Metrics[0];
  if (!definition || !metric) throw new Error('not an EMF line');
  return { name: metric.Name, unit: metric.Unit, value: line[metric.Name], dimensions: definition.Dimensions.flat() };
}

describe('the EMF recorder', () => {
  it('publishes a labelled duration as its own line: CloudWatch name, milliseconds, labels as dimensions', () => {
    const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'scan' });
    emfRecorder(metrics).observe('outpost_scan_duration_seconds', 0.25, { verdict: 'deliver' });
    expect(lines).toHaveLength(1);
    const [line] = lines;
    if (!line) throw new Error('no line');
    expect(line._aws.CloudWatchMetrics[0]?.Namespace).toBe('Outpost');
    expect(metricOf(line)).toMatchObject({ name: 'ScanDuration', unit: 'Milliseconds', value: 250 });
    expect(metricOf(line).dimensions).toContain('verdict');
    expect(line.verdict).toBe('deliver');
    expect(line.service).toBe('scan');
  });

  it('batches unlabelled durations and counts until the entry flushes: delivery attempt in ms, queue age in seconds', () => {
    const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'deliver' });
    const recorder = emfRecorder(metrics);
    recorder.observe('outpost_delivery_attempt_duration_seconds', 1.5);
    recorder.observe('outpost_delivery_attempt_duration_seconds', 0.5);
    recorder.inc('outpost_recipients_accepted_total', 'older help-text form', {}, 3);
    expect(lines).toHaveLength(0);
    metrics.publishStoredMetrics();
    expect(lines).toHaveLength(1);
    const [line] = lines;
    const names = line?._aws.CloudWatchMetrics[0]?.Metrics ?? [];
    expect(names).toEqual(expect.arrayContaining([{ Name: 'DeliveryAttemptDuration', Unit: 'Milliseconds' }, { Name: 'RecipientsAccepted', Unit: 'Count' }]));
    expect(line?.DeliveryAttemptDuration).toEqual([1500, 500]);
    expect(line?.RecipientsAccepted).toBe(3);

    recorder.observe('outpost_queue_age_at_delivery_seconds', 42, { outcome: 'delivered' });
    expect(metricOf(lines[1] as EmfLine)).toMatchObject({ name: 'QueueAgeAtDelivery', unit: 'Seconds', value: 42 });
  });
});
