// Pipeline queues, for the operator: moving dead-lettered messages back once their cause is fixed.
import { z } from 'zod';
import { QUEUE_NAMES, type DeadLetterQueues } from '../../core/ports.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { defineRoute, type Route } from './route.js';

const queueParams = z.object({
  queue: z.string().min(1).max(50).describe(`Pipeline queue whose dead-letter queue (\`<queue>-dlq\`) is moved back: ${QUEUE_NAMES.join(', ')}`),
});

const redriveSchema = z.object({
  queue: z.enum(['scan', 'deliver', 'bounce']),
  deadLetterQueue: z.string(),
  moved: z.number().int().min(0).describe('Messages moved back; they are received again as if new.'),
});

function deadLettersOf(deps: ApiDeps): DeadLetterQueues {
  // The app answers 501 before calling a handler whose port is missing; this is the type guard.
  if (!deps.deadLetters) throw new ApiProblem(501, 'dead-letter queues are not available in this deployment');
  return deps.deadLetters;
}

export const queueRoutes: Route[] = [
  defineRoute({
    operationId: 'redriveQueue',
    method: 'post',
    path: '/v1/queues/{queue}/redrive',
    tag: 'queues',
    summary: "Move every message of a queue's dead-letter queue back to the queue",
    description: `Queues: ${QUEUE_NAMES.join(', ')}. For after the cause is fixed (an engine or store that was down, a bug): the messages are received again with a fresh receive count. The same as \`npx outpost queue redrive QUEUE\`.`,
    access: 'operator',
    requires: 'deadLetters',
    params: queueParams,
    responses: { 200: { description: 'How many messages moved', schema: redriveSchema }, 404: { description: 'No such queue' } },
    handle: async ({ params, deps }) => {
      const queue = QUEUE_NAMES.find((name) => name === params.queue);
      if (!queue) throw notFound(`no queue ${params.queue}; queues are ${QUEUE_NAMES.join(', ')}`);
      const moved = await deadLettersOf(deps).redrive(queue);
      deps.logger?.info('dead-letter queue redriven', { queue, moved, by: 'operator' });
      return { status: 200, body: { queue, deadLetterQueue: `${queue}-dlq`, moved } };
    },
  }),
];
