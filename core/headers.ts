// Reading header fields from a raw RFC 5322 message (CRLF line endings, as the ingress stores it).
import { headerFromAddresses, type Mailbox } from './policy/address.js';

/** The header block of a raw message: up to the first empty line (or the first 64 KiB). */
export function headerBlock(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end >= 0 ? end + 2 : Math.min(raw.length, 65_536)).toString('latin1');
}

/**
 * Values of every header field named `name` (lower case) in a header block, unfolded and trimmed.
 * Field by field (a line and the folded lines after it), unfolding only the fields named `name`:
 * the ingress asks this for every message.
 */
export function headerValues(block: string, name: string): string[] {
  const values: string[] = [];
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf('\r\n', start);
    // A line that begins with a space or a tab continues the field (a fold).
    while (end >= 0 && isFoldAt(block, end + 2)) end = block.indexOf('\r\n', end + 2);
    if (end < 0) end = block.length;
    const colon = block.indexOf(':', start);
    if (colon > start && colon < end && block.slice(start, colon).trim().toLowerCase() === name) values.push(unfold(block.slice(colon + 1, end)).trim());
    start = end + 2;
  }
  return values;
}

const isFoldAt = (text: string, at: number): boolean => text.charCodeAt(at) === 0x20 || text.charCodeAt(at) === 0x09;
const unfold = (text: string): string => (text.includes('\r\n') ? text.replace(/\r\n[ \t]+/g, ' ') : text);

/**
 * The header From as both the policy checks it and the DKIM signer signs for it: one parser, so
 * that the address a message is admitted for is the address it is signed for. Valid only with
 * exactly one From field (mailparser shows the first, DKIM verifiers and DMARC use the last) whose
 * every part is a mailbox: no bare name, no group, and no address hidden outside the parser's
 * view (`Bob <bob@a.example> <eve@b.example>` reads as bob to the parser but as eve elsewhere).
 */
export type HeaderFrom =
  | { valid: true; value: string; mailboxes: ReadonlyArray<Readonly<Mailbox>> }
  | { valid: false; problem: 'count'; count: number }
  | { valid: false; problem: 'invalid'; value: string; invalid: readonly string[] };

export function parseHeaderFrom(values: readonly string[]): HeaderFrom {
  const [value] = values;
  if (values.length !== 1 || value === undefined) return { valid: false, problem: 'count', count: values.length };
  const { mailboxes, invalid } = headerFromAddresses(value);
  if (mailboxes.length === 0 || invalid.length > 0) return { valid: false, problem: 'invalid', value, invalid };
  // Every "@" outside quoted strings and comments must belong to an address the parser returned.
  const bare = withoutComments(value.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
  const ats = bare.split('@').length - 1;
  if (ats !== mailboxes.length) return { valid: false, problem: 'invalid', value, invalid: [bare.trim().slice(0, 200)] };
  return { valid: true, value, mailboxes };
}

/** Removes RFC 5322 comments, nested ones included. */
function withoutComments(text: string): string {
  let previous: string;
  let current = text;
  do {
    previous = current;
    current = current.replace(/\((?:[^()\\]|\\.)*\)/g, ' ');
  } while (current !== previous);
  return current;
}
