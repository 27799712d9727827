// The notice that carries a bounce on to the original sender. The bounce itself is an outsider's
// text: its From may name the tenant's own domain and its body anything. So it never travels as
// itself; this relay writes the message (From: its postmaster), says what it knows, and attaches
// the bounce unchanged as message/rfc822. Notices are never DKIM-signed with a tenant's key.
import { randomBytes } from 'node:crypto';
import { rfc5322Date } from '../delivery/dsn.js';

export interface ForwardedBounceInput {
  /** This relay's name: the postmaster address and the Message-ID domain. */
  hostname: string;
  /** The original sender, tag stripped. */
  to: string;
  /** Our queue id of the message the bounce reports on. */
  originalId: string;
  /** The bounce as received (CRLF lines, no NUL: the listener refuses anything else). */
  bounce: Buffer;
  now: number;
}

/** One header field value from text we did not write: no line breaks, no control characters. */
const fieldValue = (text: string): string => text.replace(/[\r\n]+/g, ' ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');

export function composeForwardedBounce(input: ForwardedBounceInput): Buffer {
  const { hostname, now } = input;
  // Random, so that no line of the attached bounce can end the part early.
  const boundary = `=_outpost-fwd-${randomBytes(12).toString('hex')}`;
  // The listener takes CRLF lines only; a bounce that came by another way is brought to CRLF.
  const body = input.bounce.toString('latin1').replace(/\r?\n/g, '\r\n');
  const attached = body.endsWith('\r\n') ? body : `${body}\r\n`;
  const text = [
    `From: Mail Delivery System <postmaster@${hostname}>`,
    `To: <${fieldValue(input.to)}>`,
    'Subject: Delivery report about your message',
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${hostname}>`,
    // RFC 3834: an automatic message; autoresponders must not answer it.
    'Auto-Submitted: auto-replied',
    `X-Outpost-Bounce-For: ${fieldValue(input.originalId)}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is the mail system at host ${hostname}.`,
    '',
    `A remote mail server sent a delivery report about your message with queue id ${fieldValue(input.originalId)}.`,
    'It is attached below as it was received. It was scanned for viruses and spam,',
    'but its sender and its contents are the remote side\'s word, not ours.',
    '',
    `--${boundary}`,
    'Content-Type: message/rfc822',
    'Content-Description: Delivery report as received',
    'Content-Disposition: attachment; filename="delivery-report.eml"',
    '',
    `${attached}--${boundary}--`,
    '',
  ].join('\r\n');
  return Buffer.from(text, 'latin1');
}
