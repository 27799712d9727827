// The schema of the Envelope (core/ports.ts) as it travels in queue message bodies and stores:
// every handler validates what it receives with it, since a queue body is external input.
import { z } from 'zod';
import type { Envelope } from './ports.js';

export const envelopeSchema = z.object({
  messageId: z.string().min(1),
  tenantId: z.string(),
  userId: z.string(),
  identity: z.string(),
  mailFrom: z.string(),
  rcptTo: z.array(z.string().min(1)).min(1),
  blobKey: z.string().min(1),
  size: z.number().int().min(0),
  receivedAt: z.number(),
  clientIp: z.string(),
  helo: z.string(),
}) satisfies z.ZodType<Envelope>;
