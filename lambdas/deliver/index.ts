// Lambda entry of the deliver stage (queue `deliver`, modes `ses` and `smarthost`): the deliver
// handler with AWS stores, idempotent per message and attempt, so that a job SQS hands out
// twice does not send the message twice.
import { deliverDeps } from '../aws-stores.js';
import { jsonBody, MalformedRecordError, queueEntry, type RecordIdentity } from '../entry.js';
import { METRIC } from '../metric-names.js';
import { deliverJobSchema } from '../../core/app/deliver-job.js';
import { makeDeliverHandler } from './handler.js';

/**
 * Key: message id and attempt. A job that arrives before its `notBefore` only waits longer (it is
 * queued again, unchanged): it runs outside idempotency, or its second hop would look done.
 */
export function identifyDeliverJob(body: string, now = Date.now()): RecordIdentity {
  const parsed = deliverJobSchema.safeParse(jsonBody(body, 'deliver job'));
  if (!parsed.success) throw new MalformedRecordError(`deliver job: the record body is not a deliver job (${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')})`);
  const { envelope, attempt, notBefore } = parsed.data;
  const due = notBefore === undefined || notBefore <= now + 1000;
  return { key: `${envelope.messageId}#${attempt}`, idempotent: due, messageId: envelope.messageId, tenantId: envelope.tenantId, userId: envelope.userId };
}

export const handler = queueEntry({
  service: 'deliver',
  identify: (body) => identifyDeliverJob(body),
  build: async ({ entryMetrics }) => makeDeliverHandler({ ...(await deliverDeps(entryMetrics)), metrics: entryMetrics }),
  handledMetric: METRIC.messagesDelivered,
});
