// Reading header fields from a raw RFC 5322 message (CRLF line endings, as the ingress stores it).
import { headerFromAddresses, type Mailbox } from './policy/address.js';

/** The header block of a raw message: up to the first empty line (or the first 64 KiB). */
export function headerBlock(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end >= 0 ? end + 2 : Math.min(raw.length, 65_536)).toString('latin1');
}

/** Values of every header field named `name` (lower case) in a header block, unfolded and trimmed. */
export function headerValues(block: string, name: string): string[] {
  const unfolded = block.replace(/\r\n[ \t]+/g, ' ');
  const values: string[] = [];
  for (const line of unfolded.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) values.push(line.slice(colon + 1).trim());
  }
  return values;
}

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
