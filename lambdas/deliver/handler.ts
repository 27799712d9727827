// The deliver stage's entry: reads each record of the 'deliver' queue as a deliver job and hands
// it to the delivery attempt (core/app/attempt-delivery.ts). The Lambda, the MX worker and the
// single node's poller all wire their stores into this one handler.
import { makeDeliveryAttempt, type DeliveryAttemptDeps } from '../../core/app/attempt-delivery.js';
import { parseDeliverJob } from '../../core/app/deliver-job.js';
import { errorMessage } from '../../core/log.js';
import { perRecord, type SqsHandler } from '../../core/sqs-event.js';

export { DELIVER_QUEUE, deliverJob, deliverJobSchema, type DeliverJob } from '../../core/app/deliver-job.js';

export type DeliverDeps = DeliveryAttemptDeps;

export function makeDeliverHandler(deps: DeliverDeps): SqsHandler {
  const { logger } = deps;
  const attempt = makeDeliveryAttempt(deps);
  return perRecord(
    async (record) => {
      const parsed = parseDeliverJob(record.body);
      if ('problem' in parsed) {
        // It can never succeed: retrying would only fill the dead-letter queue later.
        logger.error('invalid deliver job dropped', { queueMessageId: record.messageId, problem: parsed.problem });
        return;
      }
      await attempt(parsed.job, record.body);
    },
    (record, error) => {
      logger.error('deliver job failed; the queue will retry it', { queueMessageId: record.messageId, error: errorMessage(error) });
    },
  );
}
