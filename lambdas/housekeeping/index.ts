// Lambda entry of housekeeping, run by an EventBridge schedule: expires what has expired (locks,
// old message records, orphan bounces, quarantine) and reports what it removed as metrics.
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { housekeeping } from '../aws-stores.js';
import { lazily, telemetry } from '../entry.js';

const { logger, metrics } = telemetry('housekeeping');
const run = lazily(housekeeping);

export const handler = middy(async (event: ScheduledEvent, _context: Context): Promise<{ removed: Record<string, number> }> => {
  logger.info('housekeeping started', { scheduledAt: event.time });
  const removed = await (await run())();
  for (const [what, count] of Object.entries(removed)) metrics.addMetric(`HousekeepingRemoved_${what}`, MetricUnit.Count, count);
  logger.info('housekeeping done', { removed });
  return { removed };
})
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));
