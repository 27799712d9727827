// Counters, gauges and latency histograms of the single node's /metrics, kept by prom-client in
// a registry of their own (not prom-client's global one: two nodes in one process, as in the
// tests, must not count into each other). The names, help texts, labels and buckets come from
// the table in metric-names.ts; on AWS the same names are published as CloudWatch EMF metrics
// (lambdas/emf-recorder.ts).
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Maybe } from './maybe.js';
import { METRICS, type CounterName, type GaugeName, type HistogramName, type LabelsOf, type MetricSpec } from './metric-names.js';

/**
 * A counter increment: labels (and how many), or, as the first callers wrote it, a help text
 * first. The help text is not used: /metrics shows the table's.
 */
export type IncArgs<N extends CounterName> = [labels?: LabelsOf<N>, by?: number] | [help: string, labels?: LabelsOf<N>, by?: number];

/** What the use cases record: counts and durations. The single node keeps them for /metrics; the AWS entries publish them as EMF. */
export interface MetricRecorder {
  inc<N extends CounterName>(name: N, ...args: IncArgs<N>): void;
  /** One duration, in seconds, into a latency histogram. */
  observe<N extends HistogramName>(name: N, seconds: number, labels?: LabelsOf<N>): void;
}

/** The labels and amount of an increment, in either form of IncArgs. */
export function incArgs(args: ReadonlyArray<unknown>): { labels: Record<string, string>; by: number } {
  const rest = typeof args[0] === 'string' ? args.slice(1) : args;
  const [labels, by] = rest;
  return { labels: typeof labels === 'object' && labels !== null ? (labels as Record<string, string>) : {}, by: typeof by === 'number' ? by : 1 };
}

/** Starts a clock for a histogram; the returned function records the time elapsed, with labels known only at the end (a verdict, an outcome). */
export function startTimer<N extends HistogramName>(recorder: MetricRecorder | undefined, name: N): (labels?: LabelsOf<N>) => void {
  const started = performance.now();
  return (labels) => recorder?.observe(name, (performance.now() - started) / 1000, labels);
}

/** Runs `work` and records how long it took, whether it succeeded or threw. */
export async function timed<T, N extends HistogramName>(recorder: MetricRecorder | undefined, name: N, labels: LabelsOf<N>, work: () => Promise<T>): Promise<T> {
  return timedNow(recorder, name, labels, work);
}

/** `timed` for work that may answer at once (core/maybe.ts): then no promise is made for it. */
export function timedNow<T, N extends HistogramName>(recorder: MetricRecorder | undefined, name: N, labels: LabelsOf<N>, work: () => Maybe<T>): Maybe<T> {
  const stop = startTimer(recorder, name);
  let outcome: Maybe<T>;
  try {
    outcome = work();
  } catch (error: unknown) {
    stop(labels);
    throw error;
  }
  if (!(outcome instanceof Promise)) {
    stop(labels);
    return outcome;
  }
  return outcome.finally(() => stop(labels));
}

export interface MetricsOptions {
  /** Also expose Node's process metrics (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, ...). */
  processMetrics?: boolean;
}

export class Metrics implements MetricRecorder {
  readonly registry = new Registry();
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();

  constructor(options: MetricsOptions = {}) {
    // Every metric is registered up front, so a scrape lists all of them from the start.
    for (const [name, spec] of Object.entries(METRICS) as Array<[string, MetricSpec]>) {
      if (spec.on === 'aws') continue;
      const common = { name, help: spec.help, labelNames: [...spec.labels], registers: [this.registry] };
      if (spec.type === 'counter') this.counters.set(name, new Counter(common));
      else if (spec.type === 'gauge') this.gauges.set(name, new Gauge(common));
      else this.histograms.set(name, new Histogram({ ...common, buckets: [...spec.buckets] }));
    }
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  inc<N extends CounterName>(name: N, ...args: IncArgs<N>): void {
    const { labels, by } = incArgs(args);
    if (Number.isFinite(by) && by >= 0) this.counters.get(name)?.inc(labels, by);
  }

  set<N extends GaugeName>(name: N, labels: LabelsOf<N>, value: number): void {
    this.gauges.get(name)?.set(labels, Number.isFinite(value) ? value : 0);
  }

  observe<N extends HistogramName>(name: N, seconds: number, labels?: LabelsOf<N>): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.histograms.get(name)?.observe(labels ?? {}, seconds);
  }

  /** The Prometheus text exposition (version 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
