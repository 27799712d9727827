// The Mailer port on the SESv2 API: SendEmail with Content.Raw, so the DKIM-signed bytes go out
// unchanged (up to 40 MB, the v2 limit; v1's SendRawEmail takes 10 MB). SES takes at most 50
// recipients a call, so larger envelopes are sent in groups, each with its own SES message id.
// The tenant, user and message ids travel as message tags (SES allows only letters, digits, '_'
// and '-' there), and a configuration set routes bounce and complaint events back to Outpost
// (core/bounce/ses-event.ts reads them): SES rewrites the envelope sender, so no DSN reaches our
// bounce listener and BATV does not apply.
import { SendEmailCommand, type MessageTag, type SESv2Client } from '@aws-sdk/client-sesv2';
import { SES_TAGS } from '../../core/bounce/ses-event.js';
import type { Mailer, MailerOutcome, MailerResult, MailTags, OutgoingMail } from '../../core/ports/mailer.js';

export const SES_MAX_RAW_BYTES = 40 * 1024 * 1024;
export const SES_MAX_RECIPIENTS = 50;

export interface SesMailerOptions {
  client: SESv2Client;
  /** The configuration set whose event destination publishes bounces and complaints. */
  configurationSet?: string;
  /** Shown as the remote MTA in outcomes and DSNs; default "amazonses.com". */
  remoteMta?: string;
}

/** Keeps what SES allows in a tag (ASCII letters, digits, '_' and '-', at most 256), replacing the rest with '_'. */
export function sesTagValue(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 256);
  return cleaned === '' ? '_' : cleaned;
}

export function sesTags(tags: MailTags | undefined): MessageTag[] {
  const pairs: Array<[string, string | undefined]> = [
    [SES_TAGS.tenantId, tags?.tenantId],
    [SES_TAGS.userId, tags?.userId],
    [SES_TAGS.messageId, tags?.messageId],
  ];
  return pairs.flatMap(([name, value]) => (value === undefined || value === '' ? [] : [{ Name: name, Value: sesTagValue(value) }]));
}

interface Failure {
  result: 'temporary' | 'permanent';
  status: string;
}

/**
 * What an SES error means for the recipients. Refusals of this message are permanent; problems of
 * the account or its configuration (an operator fixes them) and of capacity are temporary, so the
 * message waits in the retry schedule instead of bouncing.
 */
export function sesFailure(error: unknown): Failure {
  const name = error instanceof Error ? error.name : '';
  switch (name) {
    case 'MessageRejected':
      return { result: 'permanent', status: '5.7.1' };
    case 'BadRequestException':
      return { result: 'permanent', status: '5.6.0' };
    case 'MailFromDomainNotVerifiedException':
    case 'NotFoundException':
    case 'AccountSuspendedException':
    case 'SendingPausedException':
      return { result: 'temporary', status: '4.7.0' };
    case 'TooManyRequestsException':
    case 'LimitExceededException':
      return { result: 'temporary', status: '4.7.0' };
    default:
      return { result: 'temporary', status: '4.4.1' };
  }
}

export class SesMailer implements Mailer {
  constructor(private readonly options: SesMailerOptions) {}

  async send(mail: OutgoingMail): Promise<MailerResult> {
    const remoteMta = this.options.remoteMta ?? 'amazonses.com';
    if (mail.raw.length > SES_MAX_RAW_BYTES) {
      return {
        outcomes: mail.rcptTo.map((recipient) => ({ recipient, result: 'permanent', status: '5.3.4', diagnostic: `message of ${mail.raw.length} bytes exceeds SES's limit of ${SES_MAX_RAW_BYTES}`, diagnosticType: 'x-outpost' })),
        providerMessageIds: [],
      };
    }
    const outcomes: MailerOutcome[] = [];
    const providerMessageIds: string[] = [];
    const tags = sesTags(mail.tags);
    for (let i = 0; i < mail.rcptTo.length; i += SES_MAX_RECIPIENTS) {
      const group = mail.rcptTo.slice(i, i + SES_MAX_RECIPIENTS);
      try {
        const result = await this.options.client.send(
          new SendEmailCommand({
            // The envelope recipients: with raw content SES sends to these, not to the header fields.
            Destination: { ToAddresses: group },
            Content: { Raw: { Data: mail.raw } },
            ...(this.options.configurationSet ? { ConfigurationSetName: this.options.configurationSet } : {}),
            ...(tags.length > 0 ? { EmailTags: tags } : {}),
          }),
        );
        const id = result.MessageId;
        if (!id) throw new Error('SES accepted the message without a message id');
        providerMessageIds.push(id);
        for (const recipient of group) outcomes.push({ recipient, result: 'delivered', response: `250 Ok ${id}`, remoteMta, providerMessageId: id });
      } catch (error: unknown) {
        const failure = sesFailure(error);
        const diagnostic = `SES ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`.replace(/[\r\n\t]+/g, ' ').slice(0, 500);
        for (const recipient of group) outcomes.push({ recipient, ...failure, diagnostic, diagnosticType: 'x-outpost', remoteMta });
      }
    }
    return { outcomes, providerMessageIds };
  }
}
