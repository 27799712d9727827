// The job on the 'deliver' queue: one delivery attempt of one message to its pending recipients.
// Every stage that hands a message to delivery (scan, quarantine release, held reports, DSNs,
// forwarded bounces) builds the first job here, and the deliver stage reads every job with
// the same schema, so the shape cannot drift between writers and the reader.
import { z } from 'zod';
import { envelopeSchema } from '../envelope.js';
import { errorMessage } from '../log.js';
import type { Envelope } from '../ports.js';

export const DELIVER_QUEUE = 'deliver';

export const deliverJobSchema = z.object({
  envelope: envelopeSchema,
  /** 1 for the first attempt; attempt n waits retrySchedule[n - 2] seconds after attempt n - 1. */
  attempt: z.number().int().min(1),
  /** Recipients still to be tried: all of rcptTo at first, then those that failed temporarily. */
  pending: z.array(z.string().min(1)).min(1),
  /** Recipients that failed permanently in earlier attempts: needed for the final message status. */
  bounced: z.array(z.string()).default([]),
  /** Earliest time (ms) for this attempt; a job received earlier is queued again for the rest of the wait. */
  notBefore: z.number().optional(),
});

export type DeliverJob = z.infer<typeof deliverJobSchema>;

/** The job for the first delivery attempt of a message. */
export function deliverJob(envelope: Envelope): DeliverJob {
  return { envelope, attempt: 1, pending: [...envelope.rcptTo], bounced: [] };
}

/** The queue body of the first delivery attempt of a message. */
export function deliverJobBody(envelope: Envelope): string {
  return JSON.stringify(deliverJob(envelope));
}

/** Reads a queue body; a body that is not a deliver job is described, never thrown. */
export function parseDeliverJob(body: string): { job: DeliverJob } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error: unknown) {
    return { problem: `body is not JSON: ${errorMessage(error)}` };
  }
  const result = deliverJobSchema.safeParse(json);
  if (!result.success) return { problem: result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') };
  return { job: result.data };
}
