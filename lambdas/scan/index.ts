// Lambda entry of the scan stage (queue `scan`): the scan handler with AWS stores, idempotent
// per message (a message scanned once is not scanned and queued for delivery again).
import { envelopeSchema } from '../../core/envelope.js';
import { scanDeps } from '../aws-stores.js';
import { jsonBody, MalformedRecordError, queueEntry, type RecordIdentity } from '../entry.js';
import { METRIC } from '../metric-names.js';
import { makeScanHandler } from './handler.js';

/** A scan job is the message's envelope; the scan is its one and only attempt. */
export function identifyScanJob(body: string): RecordIdentity {
  const parsed = envelopeSchema.safeParse(jsonBody(body, 'scan job'));
  if (!parsed.success) throw new MalformedRecordError(`scan job: the record body is not an envelope (${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')})`);
  const { messageId, tenantId, userId } = parsed.data;
  return { key: `${messageId}#scan`, idempotent: true, messageId, tenantId, userId };
}

export const handler = queueEntry({
  service: 'scan',
  identify: identifyScanJob,
  build: async ({ entryMetrics }) => makeScanHandler({ ...(await scanDeps(entryMetrics)), metrics: entryMetrics }),
  handledMetric: METRIC.messagesScanned,
  failedMetric: METRIC.scanFailures,
});
