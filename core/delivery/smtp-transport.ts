// What SMTP delivery (deliver.ts) needs from an SMTP client library: one transaction to one
// host. The library lives in an adapter (adapters/smtp/nodemailer-transports.ts), so that the
// core decides routing, TLS policy and what each answer means, and a transport that keeps
// connections open per destination can replace the one-connection-per-transaction default.
//
// Promises every implementation keeps:
// - `send` resolves once the server accepted the message for at least one recipient, with
//   `accepted` (recipients taken), `rejectedErrors` (the others, each with its answer) and the
//   final `response`;
// - it rejects with an error that carries, when known, `code` ('ETLS' for a failed STARTTLS,
//   'EMESSAGE' for a refused message), `command` (the SMTP command answered: 'CONN', 'MAIL FROM',
//   'RCPT TO', 'DATA'...), `response` and `responseCode` (the server's answer), and for a
//   transaction whose every recipient was refused, `rejectedErrors` (one per recipient);
// - `raw` is sent as given, apart from dot-stuffing and line-ending normalisation.

export interface SmtpTransportSettings {
  /** The address to connect to, and the name it was found under (TLS server name, logs). */
  host: string;
  port: number;
  /** Our name in EHLO. */
  name: string;
  /** Never try STARTTLS (a broken one, after a failed try in "may" mode). */
  ignoreTls: boolean;
  /** STARTTLS is mandatory (verified TLS): no plaintext fallback. */
  requireTls: boolean;
  tls: { rejectUnauthorized: boolean; minVersion?: 'TLSv1.2'; servername?: string; ca?: string[] };
  connectionTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
}

export interface SmtpTransport {
  send(envelope: { from: string; to: string[] }, raw: Buffer): Promise<unknown>;
  close(): void;
}

export interface SmtpTransports {
  open(settings: SmtpTransportSettings): SmtpTransport;
}
