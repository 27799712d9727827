// The bounce stage's entry: reads each record of the 'bounce' queue as the envelope of a bounce
// the listener accepted and hands it to bounce handling (core/app/handle-bounce.ts).
import { makeBounceHandling, type BounceHandlingDeps } from '../../core/app/handle-bounce.js';
import { envelopeSchema } from '../../core/envelope.js';
import { createLogger, errorMessage } from '../../core/log.js';
import type { Config } from '../../core/config.js';
import type { MetricRecorder } from '../../core/metrics.js';
import type { IngressPolicy } from '../../core/policy/index.js';
import type { Stores } from '../../core/ports/stores.js';
import { effectiveSettings, type UserSettings } from '../../core/settings.js';
import { enginesFromConfig } from '../../adapters/scan/from-config.js';
import type { Envelope } from '../../core/ports.js';
import { perRecord, type SqsHandler } from '../../core/sqs-event.js';

export { BOUNCE_QUEUE, BOUNCES_DROPPED_HELP, BOUNCES_DROPPED_METRIC } from '../../core/app/handle-bounce.js';

export type BounceHandlerDeps = BounceHandlingDeps;

/**
 * The bounce stage's dependencies from one backend's stores: what the single node's pipeline and
 * the bounce Lambda both hand to makeBounceHandler.
 */
export function bounceHandlerDeps(wiring: {
  stores: Pick<Stores, 'blobs' | 'queue' | 'log' | 'suppression' | 'clock'>;
  config: Config;
  policy: Pick<IngressPolicy, 'recordHardBounces'>;
  settingsFor(userId: string): Promise<UserSettings>;
  metrics?: MetricRecorder;
}): BounceHandlerDeps {
  const { stores, config, policy, settingsFor } = wiring;
  return {
    blobs: stores.blobs,
    queue: stores.queue,
    log: stores.log,
    suppression: stores.suppression,
    logger: createLogger('bounce'),
    clock: stores.clock,
    onHardBounce: (userId, address) => policy.recordHardBounces(userId, 1, { recipient: address, via: 'bounce' }),
    shouldForward: async ({ userId }) => (await settingsFor(userId)).forwardBounces,
    hostname: config.hostname,
    scanning: { ...enginesFromConfig(config.scanning), scanning: config.scanning, spamThreshold: effectiveSettings(config.defaults).spamThreshold },
    maxRecipients: config.bounces.maxRecipients,
    ...(wiring.metrics ? { metrics: wiring.metrics } : {}),
  };
}

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
