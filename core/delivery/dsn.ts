// Delivery status notifications (RFC 3464): a multipart/report that tells the sender which
// recipients failed and why, in words for people and in message/delivery-status for software,
// with the original headers (not the body: it may be large, and the sender has it).
import { randomBytes } from 'node:crypto';
import type { Envelope } from '../ports.js';
import type { DiagnosticType } from './deliver.js';

export interface FailedRecipient {
  recipient: string;
  /** RFC 3463 status, e.g. 5.1.1, or 4.4.7 when retries ran out. */
  status: string;
  diagnostic: string;
  diagnosticType: DiagnosticType;
  remoteMta?: string | undefined;
}

export interface DsnInput {
  /** This relay's name: Reporting-MTA and the MAILER-DAEMON address. */
  hostname: string;
  /** The envelope of the message that failed. */
  envelope: Pick<Envelope, 'messageId' | 'mailFrom' | 'receivedAt'>;
  /** The failed message as stored; only its header section is quoted. */
  original: Buffer;
  failures: FailedRecipient[];
  /** When the DSN is written (milliseconds). */
  now: number;
}

/** RFC 5322 date-time, always in UTC. */
export function rfc5322Date(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

/** The header section of a message: everything before the first empty line, CRLF-terminated. */
export function headerSection(raw: Buffer): Buffer {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return raw.subarray(0, crlf + 2);
  if (lf >= 0) return raw.subarray(0, lf + 1);
  return raw;
}

/** Text that came from elsewhere (a remote answer, an address) made safe for one header field. */
function fieldValue(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** Folds a long field at spaces so no line exceeds 78 octets where that is possible. */
function fold(name: string, value: string): string {
  const words = fieldValue(value).split(' ');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of words) {
    if (line.length + 1 + word.length > 78 && line.trim().length > name.length + 1) {
      lines.push(line);
      line = ' ';
    } else {
      line += ' ';
    }
    line += word;
  }
  lines.push(line);
  return lines.join('\r\n');
}

function actionText(failure: FailedRecipient): string {
  if (failure.status === '4.4.7') return `delivery was still failing when the retry period ran out: ${failure.diagnostic}`;
  return failure.diagnostic;
}

/** Composes the DSN for `failures`. The caller sends it with the null sender to envelope.mailFrom. */
export function composeDsn(input: DsnInput): Buffer {
  const { hostname, envelope, failures, now } = input;
  if (envelope.mailFrom === '') throw new Error('no DSN is sent for a message with the null sender (RFC 3464 section 2)');
  const boundary = `${envelope.messageId.replace(/[^A-Za-z0-9]/g, '')}.${randomBytes(8).toString('hex')}/${hostname}`;
  const mailerDaemon = `MAILER-DAEMON@${hostname}`;

  const human = [
    `This is the mail system at host ${hostname}.`,
    '',
    "I'm sorry to have to inform you that your message could not",
    'be delivered to one or more recipients. It is attached below.',
    '',
    'For further assistance, please contact your mail provider and include this report.',
    '',
    ...failures.map((failure) => `<${fieldValue(failure.recipient)}>: ${fieldValue(actionText(failure))}`),
  ];

  const perMessage = [
    `Reporting-MTA: dns; ${hostname}`,
    `X-Outpost-Queue-ID: ${fieldValue(envelope.messageId)}`,
    `Arrival-Date: ${rfc5322Date(envelope.receivedAt)}`,
  ];
  const perRecipient = failures.map((failure) =>
    [
      `Final-Recipient: rfc822; ${fieldValue(failure.recipient)}`,
      'Action: failed',
      `Status: ${failure.status}`,
      ...(failure.remoteMta ? [`Remote-MTA: dns; ${fieldValue(failure.remoteMta)}`] : []),
      fold('Diagnostic-Code', `${failure.diagnosticType}; ${failure.diagnostic}`),
    ].join('\r\n'),
  );

  const headers = [
    `From: Mail Delivery System <${mailerDaemon}>`,
    `To: <${fieldValue(envelope.mailFrom)}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${hostname}>`,
    // RFC 3834: an automatic reply; autoresponders must not answer it.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="${boundary}"`,
  ];

  const text = [
    ...headers,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    ...human,
    '',
    `--${boundary}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    perMessage.join('\r\n'),
    '',
    perRecipient.join('\r\n\r\n'),
    '',
    `--${boundary}`,
    'Content-Description: Undelivered Message Headers',
    'Content-Type: text/rfc822-headers',
    '',
    '',
  ].join('\r\n');

  return Buffer.concat([Buffer.from(text, 'utf8'), headerSection(input.original), Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8')]);
}
