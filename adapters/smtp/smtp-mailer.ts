// The Mailer port over SMTP: recipients routed by MX (or to the smarthost), each destination
// tried in MX order with the delivery settings (TLS policy, timeouts, address limit), over
// nodemailer unless other transports are given. The deliver stage of the single node and of the
// smarthost and mx modes runs the same SMTP delivery (core/delivery/deliver.ts) with the same
// transports, signing only when a destination has a free slot; this face is for callers that
// hold a message already prepared, as SesMailer takes one.
import type { Config } from '../../core/config.js';
import { deliverEnvelope } from '../../core/delivery/deliver.js';
import type { DeliveryScheduler } from '../../core/delivery/scheduler.js';
import type { SmtpTransports } from '../../core/delivery/smtp-transport.js';
import type { Envelope, Logger, Resolver } from '../../core/ports.js';
import type { Mailer, MailerResult, OutgoingMail } from '../../core/ports/mailer.js';
import { nodemailerTransports } from './nodemailer-transports.js';

export interface SmtpMailerOptions {
  config: Pick<Config, 'hostname' | 'delivery'>;
  resolver: Resolver;
  logger: Logger;
  /** Port of MX hosts (25); tests point it at a local test MX. */
  mxPort?: number;
  scheduler?: DeliveryScheduler;
  transports?: SmtpTransports;
}

export class SmtpMailer implements Mailer {
  constructor(private readonly options: SmtpMailerOptions) {}

  async send(mail: OutgoingMail): Promise<MailerResult> {
    // The envelope as delivery reads it: the sender and the bytes are sent as given.
    const envelope: Envelope = {
      messageId: mail.tags?.messageId ?? '',
      tenantId: mail.tags?.tenantId ?? '',
      userId: mail.tags?.userId ?? '',
      identity: '',
      mailFrom: mail.mailFrom,
      rcptTo: mail.rcptTo,
      blobKey: '',
      size: mail.raw.length,
      receivedAt: 0,
      clientIp: '',
      helo: '',
    };
    const outcomes = await deliverEnvelope(envelope, mail.raw, mail.rcptTo, {
      config: this.options.config,
      resolver: this.options.resolver,
      logger: this.options.logger,
      transports: this.options.transports ?? nodemailerTransports,
      ...(this.options.mxPort !== undefined ? { mxPort: this.options.mxPort } : {}),
      ...(this.options.scheduler ? { scheduler: this.options.scheduler } : {}),
    });
    return { outcomes, providerMessageIds: [] };
  }
}
