// Sends one prepared message (already DKIM-signed) to its recipients: SMTP today
// (core/delivery/deliver.ts), SESv2 raw send on AWS (adapters/aws/ses-mailer.ts).
//
// Promises every implementation keeps:
// - the bytes of `raw` are sent unchanged (a DKIM signature over them must stay valid);
// - every recipient of `rcptTo` gets exactly one outcome: delivered (the provider took
//   responsibility), temporary (try again later) or permanent (bounce to the sender), with an
//   RFC 3463 status;
// - it never throws for a delivery problem: failures are outcomes. It throws only when it cannot
//   say what happened (then the whole attempt is retried).
import type { RecipientOutcome } from '../delivery/deliver.js';

/** Labels carried with the message to the provider, so that its events name our records. */
export interface MailTags {
  tenantId?: string;
  userId?: string;
  /** Our queue id (the message log's id). */
  messageId?: string;
}

export interface OutgoingMail {
  /** Envelope sender; '' is the null sender. Providers that rewrite it (SES) may ignore it. */
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  tags?: MailTags;
}

export type MailerOutcome = RecipientOutcome & {
  /** The provider's id of the message that went to this recipient (SES message id). */
  providerMessageId?: string;
};

export interface MailerResult {
  outcomes: MailerOutcome[];
  /** Every provider message id of this send, for the message log (SES events name them). */
  providerMessageIds: string[];
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<MailerResult>;
}
