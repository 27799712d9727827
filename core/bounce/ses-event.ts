// Reads SES bounce and complaint events. With SES, the envelope sender is SES's own, so no DSN
// comes back to our bounce listener (and BATV does not apply): SES reports bounces and complaints
// as events of the configuration set instead. They arrive in one of three wrappings, all read
// here: an SNS notification (an SQS message from an SNS subscription, `Message` holding the
// event as a string), the bare event (SNS raw message delivery), or an EventBridge event
// (`source: aws.ses`, the event in `detail`). Events published by a configuration set say
// `eventType`; identity feedback notifications say `notificationType`: both are read.
//
// The result is the same per-recipient shape as a DSN (core/bounce/parse.ts): a permanent
// bounce's recipients are hard (suppressed, counted as invalid recipients); transient and
// undetermined ones are soft. Complaints name the recipients who marked the message as spam.
import { z } from 'zod';
import type { BounceRecipient } from './parse.js';

/** Message tags the SES mailer sets (values sanitised to SES's alphabet). */
export const SES_TAGS = { tenantId: 'outpost-tenant', userId: 'outpost-user', messageId: 'outpost-message' } as const;

export interface SesFeedbackBase {
  /** The SES message id SendEmail returned (kept in the message log). */
  sesMessageId: string;
  /** When SES received the original message (ms). */
  sentAt: number | undefined;
  /** When the bounce or complaint happened (ms). */
  at: number | undefined;
  feedbackId: string | undefined;
  /** Our tags, as SES echoes them. */
  tags: { tenantId?: string; userId?: string; messageId?: string };
}

export interface SesBounce extends SesFeedbackBase {
  kind: 'bounce';
  bounceType: string;
  bounceSubType: string;
  hard: BounceRecipient[];
  soft: BounceRecipient[];
}

export interface SesComplaint extends SesFeedbackBase {
  kind: 'complaint';
  complainedRecipients: string[];
  /** e.g. abuse, fraud, not-spam (ARF feedback type), when the receiver gave one. */
  feedbackType: string | undefined;
}

/** Any other SES event (Delivery, Send, Open, ...): nothing for bounce handling to do. */
export interface SesOtherEvent {
  kind: 'other';
  eventType: string;
  sesMessageId: string | undefined;
}

export type SesFeedback = SesBounce | SesComplaint | SesOtherEvent;

export class SesEventError extends Error {
  override name = 'SesEventError';
}

const mailSchema = z.object({
  messageId: z.string().min(1),
  timestamp: z.string().optional(),
  tags: z.record(z.string(), z.array(z.string())).optional(),
});

const bounceSchema = z.object({
  bounceType: z.string(),
  bounceSubType: z.string().optional(),
  bouncedRecipients: z.array(
    z.object({
      emailAddress: z.string(),
      action: z.string().optional(),
      status: z.string().optional(),
      diagnosticCode: z.string().optional(),
    }),
  ),
  timestamp: z.string().optional(),
  feedbackId: z.string().optional(),
});

const complaintSchema = z.object({
  complainedRecipients: z.array(z.object({ emailAddress: z.string() })),
  timestamp: z.string().optional(),
  feedbackId: z.string().optional(),
  complaintFeedbackType: z.string().optional(),
});

const eventSchema = z.object({
  eventType: z.string().optional(),
  notificationType: z.string().optional(),
  mail: mailSchema,
  bounce: bounceSchema.optional(),
  complaint: complaintSchema.optional(),
});

const snsSchema = z.object({ Type: z.literal('Notification'), Message: z.string() });
const eventBridgeSchema = z.object({ source: z.literal('aws.ses'), 'detail-type': z.string(), detail: z.unknown() });

function time(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

function json(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new SesEventError('SES event is not JSON');
  }
}

/** The SES event inside any of its wrappings (an SQS body string, or already parsed JSON). */
export function unwrapSesEvent(input: unknown): unknown {
  let value = typeof input === 'string' ? json(input) : input;
  // Unwrap at most twice: EventBridge or SNS around the event, never deeper.
  for (let depth = 0; depth < 2; depth++) {
    const sns = snsSchema.safeParse(value);
    if (sns.success) {
      value = json(sns.data.Message);
      continue;
    }
    const bridge = eventBridgeSchema.safeParse(value);
    if (bridge.success) {
      value = bridge.data.detail;
      continue;
    }
    break;
  }
  return value;
}

/** Reads one SES event; throws SesEventError when it is not an SES event at all. */
export function parseSesEvent(input: unknown): SesFeedback {
  const parsed = eventSchema.safeParse(unwrapSesEvent(input));
  if (!parsed.success) throw new SesEventError(`not an SES event: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim());
  const event = parsed.data;
  const eventType = event.eventType ?? event.notificationType ?? '';
  const tagValue = (name: string): string | undefined => event.mail.tags?.[name]?.[0];
  const base: SesFeedbackBase = {
    sesMessageId: event.mail.messageId,
    sentAt: time(event.mail.timestamp),
    at: undefined,
    feedbackId: undefined,
    tags: Object.fromEntries(
      Object.entries(SES_TAGS).flatMap(([field, name]) => {
        const value = tagValue(name);
        return value === undefined ? [] : [[field, value]];
      }),
    ),
  };
  if (eventType === 'Bounce') {
    if (!event.bounce) throw new SesEventError('SES Bounce event without a bounce object');
    const hard = event.bounce.bounceType === 'Permanent';
    const recipients: BounceRecipient[] = event.bounce.bouncedRecipients.map((recipient) => ({
      address: recipient.emailAddress,
      status: recipient.status ?? (hard ? '5.0.0' : '4.0.0'),
      action: recipient.action ?? (hard ? 'failed' : 'delayed'),
      diagnostic: (recipient.diagnosticCode ?? '').replace(/[\r\n\t]+/g, ' '),
      hard,
    }));
    return {
      ...base,
      kind: 'bounce',
      at: time(event.bounce.timestamp),
      feedbackId: event.bounce.feedbackId,
      bounceType: event.bounce.bounceType,
      bounceSubType: event.bounce.bounceSubType ?? '',
      hard: recipients.filter((recipient) => recipient.hard),
      soft: recipients.filter((recipient) => !recipient.hard),
    };
  }
  if (eventType === 'Complaint') {
    if (!event.complaint) throw new SesEventError('SES Complaint event without a complaint object');
    return {
      ...base,
      kind: 'complaint',
      at: time(event.complaint.timestamp),
      feedbackId: event.complaint.feedbackId,
      complainedRecipients: event.complaint.complainedRecipients.map((recipient) => recipient.emailAddress),
      feedbackType: event.complaint.complaintFeedbackType,
    };
  }
  return { kind: 'other', eventType, sesMessageId: event.mail.messageId };
}
