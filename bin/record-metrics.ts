// What the AWS entries count per queue record (lambdas/entry.ts), counted the same way on the
// single node's pollers, so that both deployments publish these metrics under the same names.
import type { MetricRecorder } from '../core/metrics.js';
import type { CounterName } from '../core/metric-names.js';
import type { SqsHandler } from '../core/sqs-event.js';

type HandledName = Extract<CounterName, 'outpost_messages_scanned_total' | 'outpost_messages_delivered_total' | 'outpost_bounces_handled_total'>;

const HANDLED: Partial<Record<string, HandledName>> = {
  scan: 'outpost_messages_scanned_total',
  deliver: 'outpost_messages_delivered_total',
  bounce: 'outpost_bounces_handled_total',
};

/** The queue's handler, counting its records handled and failed (a failed record is retried). */
export function countingRecords(queueName: string, handler: SqsHandler, metrics: MetricRecorder): SqsHandler {
  const handled = HANDLED[queueName];
  const countFailures = (failed: number): void => {
    if (failed === 0) return;
    metrics.inc('outpost_record_failures_total', {}, failed);
    if (queueName === 'scan') metrics.inc('outpost_scan_failures_total', {}, failed);
  };
  return async (event) => {
    let response: Awaited<ReturnType<SqsHandler>>;
    try {
      response = await handler(event);
    } catch (error: unknown) {
      countFailures(event.Records.length);
      throw error;
    }
    const failed = response.batchItemFailures.length;
    if (handled) metrics.inc(handled, {}, event.Records.length - failed);
    countFailures(failed);
    return response;
  };
}
