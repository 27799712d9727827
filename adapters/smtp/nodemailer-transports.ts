// SMTP transactions with nodemailer's SMTP client, one connection per transaction. Local files
// and URLs are never read: the message is given as bytes.
import nodemailer from 'nodemailer';
import type { SmtpTransport, SmtpTransports, SmtpTransportSettings } from '../../core/delivery/smtp-transport.js';

export const nodemailerTransports: SmtpTransports = {
  open(settings: SmtpTransportSettings): SmtpTransport {
    const transport = nodemailer.createTransport({
      host: settings.host,
      port: settings.port,
      name: settings.name,
      secure: false,
      ignoreTLS: settings.ignoreTls,
      requireTLS: settings.requireTls,
      tls: settings.tls,
      connectionTimeout: settings.connectionTimeoutMs,
      greetingTimeout: settings.greetingTimeoutMs,
      socketTimeout: settings.socketTimeoutMs,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
    return {
      send: (envelope, raw) => transport.sendMail({ envelope, raw }),
      close: () => transport.close(),
    };
  },
};
