// Lambda entry of the bounce stage. Two queues feed it: `bounce` (bounces the listener on port 25
// accepted; the body is the bounce's envelope) and `ses-events` (SES sending events through
// EventBridge: with SES the envelope sender is SES's own, so bounces and complaints arrive this
// way). Each record is handled once per bounce or event.
import type { SqsHandler } from '../../core/sqs-event.js';
import { perRecord } from '../../core/sqs-event.js';
import { envelopeSchema } from '../../core/envelope.js';
import { errorMessage } from '../../core/log.js';
import { bounceDeps, sesEventHandler, type SesEvent } from '../aws-stores.js';
import { jsonBody, lazily, MalformedRecordError, queueEntry, type RecordIdentity, type Telemetry } from '../entry.js';
import { METRIC } from '../metric-names.js';
import { makeBounceHandler } from './handler.js';

function isSesEvent(json: unknown): json is SesEvent {
  if (typeof json !== 'object' || json === null) return false;
  const { source, id, detail } = json as Record<string, unknown>;
  return source === 'aws.ses' && typeof id === 'string' && typeof detail === 'object' && detail !== null;
}

export function identifyBounceRecord(body: string): RecordIdentity {
  const json = jsonBody(body, 'bounce record');
  if (isSesEvent(json)) return { key: `ses#${json.id}`, idempotent: true };
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success) throw new MalformedRecordError('bounce record: the body is neither a bounce envelope nor an SES event');
  return { key: `${parsed.data.messageId}#bounce`, idempotent: true, messageId: parsed.data.messageId };
}

/** Routes each record to the bounce handler or the SES event handler (each built on first use). */
function bounceStage({ entryMetrics, logger }: Telemetry): SqsHandler {
  const bounces = lazily(async () => makeBounceHandler({ ...(await bounceDeps(entryMetrics)), metrics: entryMetrics }));
  const sesEvents = lazily(() => sesEventHandler(entryMetrics));
  return perRecord(
    async (record) => {
      const json = jsonBody(record.body, 'bounce record');
      if (isSesEvent(json)) {
        await (await sesEvents())(json);
        return;
      }
      const result = await (await bounces())({ Records: [record] });
      if (result.batchItemFailures.length > 0) throw new Error(`bounce record ${record.messageId} failed`);
    },
    (record, error) => logger.error('bounce record failed', { sqsMessageId: record.messageId, error: errorMessage(error) }),
  );
}

export const handler = queueEntry({
  service: 'bounce',
  identify: identifyBounceRecord,
  build: async (telemetry) => bounceStage(telemetry),
  handledMetric: METRIC.bouncesHandled,
});
