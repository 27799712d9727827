// SMTP transactions with nodemailer's SMTP client, one connection per transaction. Local files
// and URLs are never read: the message is given as bytes.
import nodemailer from 'nodemailer';
import type { SmtpTransport, SmtpTransports, SmtpTransportSettings } from '../../core/delivery/smtp-transport.js';

export const nodemailerTransports: SmtpTransports = { open: (settings) => openTransport(settings) };

/** The same, logging in to the server (a smarthost that wants AUTH; only after TLS when it asks for it). */
export function authenticatedTransports(auth: { user: string; pass: string }): SmtpTransports {
  return { open: (settings) => openTransport(settings, auth) };
}

function openTransport(settings: SmtpTransportSettings, auth?: { user: string; pass: string }): SmtpTransport {
  {
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
      ...(auth ? { auth } : {}),
    });
    return {
      send: (envelope, raw) => transport.sendMail({ envelope, raw }),
      close: () => transport.close(),
    };
  }
}
