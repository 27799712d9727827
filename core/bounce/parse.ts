// Reads a bounce: RFC 3464 delivery status notifications first, then the common non-standard
// forms (qmail, Exim, sendmail-style transcripts). The result names each failed recipient with
// its status, and the queue id of our original message when the returned headers carry it.
import { parseEntity, parseHeaderFields, splitHeaderBody, walk, type MimeEntity } from './mime.js';

export interface BounceRecipient {
  address: string;
  /** Enhanced status code (RFC 3463), e.g. 5.1.1; '' when the bounce gives none. */
  status: string;
  /** RFC 3464 action: failed, delayed, delivered, relayed, expanded. */
  action: string;
  diagnostic: string;
  /** A permanent failure (5.x.x): the address goes on the suppression list. */
  hard: boolean;
}

export interface BounceReport {
  format: 'dsn' | 'qmail' | 'exim' | 'transcript' | 'unknown';
  recipients: BounceRecipient[];
  /** Our queue id (X-Outpost-Queue-Id of the returned headers). */
  originalMessageId?: string;
  /** The Message-ID header field of the returned message. */
  originalHeaderMessageId?: string;
  /** Recipients the bounce listed beyond `maxRecipients`, not read. */
  ignoredRecipients?: number;
}

const STATUS_RE = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/;
const REPLY_RE = /\b([245])\d\d\b/;
// Bounces come from anyone: every pattern here must run in linear time on hostile input. The
// lookbehind lets a match start only where a token starts, and the domain excludes "@", so
// neither "a.a.a...@" nor "a@a@a@..." makes the engine rescan the line from every position.
const ADDRESS_RE = /(?<![^\s<>()",;:])[^\s<>()",;:]+@[^\s<>()",;:@]+\.[^\s<>()",;:@]+/;
/** Lines that end a report and start the returned message (qmail, Exim, others). */
const RETURNED_MARKER_RE = /^(?:--- Below this line is a copy of the message\.|-{3,}.*copy of the message.*|\s*-+ Original message -+|\s*-+ Returned message -+)\s*$/i;
/** Marker lines are short; longer lines are not tested, which keeps the patterns above cheap. */
const MAX_MARKER_LINE = 200;

/** The text before and after the first line matching `re` (undefined when no line does). */
function splitAtLine(text: string, re: RegExp): { before: string; after: string } | undefined {
  let at = 0;
  for (const line of text.split('\n')) {
    if (line.length <= MAX_MARKER_LINE && re.test(line)) return { before: text.slice(0, at), after: text.slice(at + line.length + 1) };
    at += line.length + 1;
  }
  return undefined;
}

/**
 * Reads a bounce. `maxRecipients` caps the recipients taken from it: one message goes to a bounded
 * number of recipients, and a report listing more is not believed beyond that.
 */
export function parseBounce(raw: Buffer, options: { maxRecipients?: number } = {}): BounceReport {
  const root = parseEntity(raw.toString('latin1'));
  const entities = walk(root);
  const report = fromDsn(entities) ?? fromPlainText(entities);
  const max = options.maxRecipients ?? Infinity;
  const capped = report.recipients.length > max ? { recipients: report.recipients.slice(0, max), ignoredRecipients: report.recipients.length - max } : {};
  return { ...report, ...capped, ...originalIds(entities, report.format) };
}

function fromDsn(entities: MimeEntity[]): Omit<BounceReport, 'originalMessageId' | 'originalHeaderMessageId'> | undefined {
  const status = entities.find((entity) => entity.contentType === 'message/delivery-status' || entity.contentType === 'message/global-delivery-status');
  if (!status) return undefined;
  // Per-message fields come first, then one block per recipient, separated by blank lines.
  const blocks = status.body.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/).map((block) => parseHeaderFields(block.trim()));
  const recipients: BounceRecipient[] = [];
  for (const fields of blocks) {
    const recipientField = fields.get('final-recipient')?.[0] ?? fields.get('original-recipient')?.[0];
    if (!recipientField) continue;
    const address = addressOf(recipientField.replace(/^[^;]*;/, ''));
    if (!address) continue;
    const action = (fields.get('action')?.[0] ?? '').toLowerCase().split(/\s/)[0] ?? '';
    const diagnostic = (fields.get('diagnostic-code')?.[0] ?? '').replace(/^[^;]*;\s*/, '');
    const statusCode = STATUS_RE.exec(fields.get('status')?.[0] ?? '')?.[0] ?? STATUS_RE.exec(diagnostic)?.[0] ?? '';
    recipients.push({ address, status: statusCode, action, diagnostic, hard: action === 'failed' && statusCode.startsWith('5') });
  }
  return { format: 'dsn', recipients };
}

function fromPlainText(entities: MimeEntity[]): Omit<BounceReport, 'originalMessageId' | 'originalHeaderMessageId'> {
  const text = entities
    .filter((entity) => entity.contentType === 'text/plain')
    .map((entity) => entity.body.replace(/\r\n?/g, '\n'))
    .join('\n');
  if (/This is the qmail-send program/i.test(text)) return { format: 'qmail', recipients: qmail(text) };
  if (/following address\(es\) failed/i.test(text)) return { format: 'exim', recipients: exim(text) };
  const transcript = transcriptLines(text);
  return { format: transcript.length > 0 ? 'transcript' : 'unknown', recipients: transcript };
}

// qmail: "<addr>:" then the reason, up to a blank line; the intro says whether it gave up.
function qmail(text: string): BounceRecipient[] {
  const report = splitAtLine(text, /^--- Below this line is a copy of the message\./)?.before ?? text;
  const permanent = /permanent error/i.test(report);
  const recipients: BounceRecipient[] = [];
  for (const match of report.matchAll(/^<([^>\s]+@[^>\s]+)>:\n((?:.+\n?)*)/gm)) {
    const address = match[1] ?? '';
    const diagnostic = (match[2] ?? '').trim().replace(/\s*\n\s*/g, ' ');
    recipients.push(fromDiagnostic(address, diagnostic, permanent));
  }
  return recipients;
}

// Exim: after "The following address(es) failed:", an address indented by two spaces and its
// details indented further, blocks separated by blank lines.
function exim(text: string): BounceRecipient[] {
  const after = text.split(/following address\(es\) failed:/i)[1] ?? '';
  const report = splitAtLine(after, /^-{3,}.*copy of the message/i)?.before ?? after;
  const permanent = /permanent error/i.test(text);
  const recipients: BounceRecipient[] = [];
  for (const block of report.split(/\n[ \t]*\n/)) {
    const [first = '', ...rest] = block.replace(/^\n+/, '').split('\n');
    const address = addressOf(first);
    if (!address || !/^ {1,3}\S/.test(first)) continue;
    recipients.push(fromDiagnostic(address, rest.map((line) => line.trim()).join(' '), permanent));
  }
  return recipients;
}

// The last resort: lines of an SMTP transcript such as "550 5.1.1 <addr>... User unknown".
function transcriptLines(text: string): BounceRecipient[] {
  const seen = new Map<string, BounceRecipient>();
  for (const line of text.split('\n')) {
    const match = /^\s*(?:<<<\s*)?([245]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3}\s+)?)(.*)$/.exec(line);
    if (!match) continue;
    const address = addressOf(match[3] ?? '');
    if (!address || seen.has(address.toLowerCase())) continue;
    seen.set(address.toLowerCase(), fromDiagnostic(address, line.trim().replace(/^<<<\s*/, ''), /permanent/i.test(text)));
  }
  return [...seen.values()];
}

function fromDiagnostic(address: string, diagnostic: string, permanent: boolean): BounceRecipient {
  const status = STATUS_RE.exec(diagnostic)?.[0] ?? '';
  const reply = REPLY_RE.exec(diagnostic)?.[1];
  const klass = status[0] ?? reply ?? (permanent ? '5' : '4');
  const failed = klass === '5' || (permanent && klass !== '4');
  return { address, status, action: failed ? 'failed' : 'delayed', diagnostic, hard: klass === '5' };
}

function addressOf(text: string): string | undefined {
  const angled = /<([^<>\s]+@[^<>\s]+)>/.exec(text)?.[1];
  const found = angled ?? ADDRESS_RE.exec(text)?.[0];
  return found?.replace(/[.]+$/, '');
}

/** The returned message's headers: an rfc822 part, text/rfc822-headers, or text after a qmail/Exim marker. */
function originalIds(entities: MimeEntity[], format: BounceReport['format']): Pick<BounceReport, 'originalMessageId' | 'originalHeaderMessageId'> {
  let headers: Map<string, string[]> | undefined;
  const returned = entities.find((entity) => ['message/rfc822', 'message/global', 'text/rfc822-headers', 'message/global-headers'].includes(entity.contentType));
  if (returned?.contentType === 'message/rfc822' || returned?.contentType === 'message/global') headers = returned.parts[0]?.headers;
  else if (returned) headers = parseHeaderFields(splitHeaderBody(returned.body).head);
  if (!headers && format !== 'dsn') {
    const text = entities.filter((entity) => entity.contentType === 'text/plain').map((entity) => entity.body.replace(/\r\n?/g, '\n')).join('\n');
    const marked = splitAtLine(text, RETURNED_MARKER_RE);
    if (marked) headers = parseHeaderFields(splitHeaderBody(marked.after.replace(/^\n+/, '')).head);
  }
  const queueId = headers?.get('x-outpost-queue-id')?.[0]?.trim();
  const messageId = headers?.get('message-id')?.[0]?.trim();
  return {
    ...(queueId && /^[\w.-]{1,128}$/.test(queueId) ? { originalMessageId: queueId } : {}),
    ...(messageId ? { originalHeaderMessageId: messageId } : {}),
  };
}
