// The bounce stage's entry: reads each record of the 'bounce' queue as the envelope of a bounce
// the listener accepted and hands it to bounce handling (core/app/handle-bounce.ts).
import { makeBounceHandling, type BounceHandlingDeps } from '../../core/app/handle-bounce.js';
import { envelopeSchema } from '../../core/envelope.js';
import { errorMessage } from '../../core/log.js';
import type { Envelope } from '../../core/ports.js';
import { perRecord, type SqsHandler } from '../../core/sqs-event.js';

export { BOUNCE_QUEUE, BOUNCES_DROPPED_HELP, BOUNCES_DROPPED_METRIC } from '../../core/app/handle-bounce.js';

export type BounceHandlerDeps = BounceHandlingDeps;

function parseEnvelope(body: string): { envelope: Envelope } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error: unknown) {
    return { problem: `body is not JSON: ${errorMessage(error)}` };
  }
  const result = envelopeSchema.safeParse(json);
  if (!result.success) return { problem: result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') };
  return { envelope: result.data };
}

export function makeBounceHandler(deps: BounceHandlerDeps): SqsHandler {
  const { logger } = deps;
  const handleBounce = makeBounceHandling(deps);
  return perRecord(
    async (record) => {
      const parsed = parseEnvelope(record.body);
      if ('problem' in parsed) {
        // It can never succeed: retrying would only fill the dead-letter queue later.
        logger.error('invalid bounce record dropped', { queueMessageId: record.messageId, problem: parsed.problem });
        return;
      }
      await handleBounce(parsed.envelope);
    },
    (record, error) => {
      logger.error('bounce handling failed; the queue will retry', { queueMessageId: record.messageId, error: errorMessage(error) });
    },
  );
}
