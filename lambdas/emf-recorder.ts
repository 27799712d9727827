// The core's metric recorder on AWS: each count and duration becomes a CloudWatch EMF metric with
// the name, unit and value of the shared table (core/metric-names.ts). Histograms are published
// as raw values (Milliseconds or Seconds), from which CloudWatch computes p50/p99. A metric
// without labels goes into the entry's batch (flushed by logMetrics at the end of the
// invocation); one with labels is its own EMF line, its labels as dimensions (all of them few-valued: phase, verdict, outcome).
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { incArgs, type MetricRecorder } from '../core/metrics.js';
import { emfName, emfValue, type MetricName } from '../core/metric-names.js';

export function emfRecorder(metrics: Metrics): MetricRecorder {
  const publish = (name: MetricName, raw: number, labels: Readonly<Record<string, string>> | undefined): void => {
    if (!Number.isFinite(raw)) return;
    const { unit, value } = emfValue(name, raw);
    const dimensions = Object.entries(labels ?? {});
    if (dimensions.length === 0) {
      metrics.addMetric(emfName(name), unit, value);
      return;
    }
    const single = metrics.singleMetric();
    for (const [dimension, label] of dimensions) single.addDimension(dimension, label);
    single.addMetric(emfName(name), unit, value);
  };
  return {
    inc(name, ...args) {
      const { labels, by } = incArgs(args);
      publish(name, by, labels);
    },
    observe(name, seconds, labels) {
      publish(name, seconds, labels);
    },
  };
}
