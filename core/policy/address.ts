// Mail addresses as the policy sees them: envelope addresses (RFC 5321 Mailbox) and the header
// From (RFC 5322 address list, e.g. `"Doe, John" <john@example.org>`).
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { BoundedMemo } from '../bounded-memo.js';

export interface Mailbox {
  local: string;
  /** Lower-case, ASCII (IDNA), no trailing dot. */
  domain: string;
}

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;
// atext of RFC 5322 plus UTF-8 (SMTPUTF8); dots only between atoms.
const DOT_ATOM_RE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+)*$/;
const QUOTED_RE = /^"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$/;

/**
 * Parses were repeated: each message's sender is read by five checks and its recipients by four,
 * and a busy sender sends from the same address message after message. The answers are kept (at
 * most MEMO_ENTRIES, all forgotten at once when full; values longer than MEMO_MAX_LENGTH are
 * parsed every time, so that what is kept stays a few megabytes whatever clients send) and frozen,
 * since every caller shares them.
 */
const MEMO_ENTRIES = 4096;
const MEMO_MAX_LENGTH = 1000;
const parsedMailboxes = new BoundedMemo<Readonly<Mailbox> | null>(MEMO_ENTRIES, (address) => {
  const mailbox = parseMailboxOnce(address);
  return mailbox ? Object.freeze(mailbox) : null;
});

/** Parses an envelope address; undefined when it is not a valid mailbox (address literals are not accepted). */
export function parseMailbox(address: string): Readonly<Mailbox> | undefined {
  if (address.length > MEMO_MAX_LENGTH) return parseMailboxOnce(address);
  return parsedMailboxes.get(address) ?? undefined;
}

function parseMailboxOnce(address: string): Mailbox | undefined {
  const value = address.trim().replace(/^<(.*)>$/, '$1');
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return undefined;
  const local = value.slice(0, at);
  if (local.length > 64 || !(DOT_ATOM_RE.test(local) || QUOTED_RE.test(local))) return undefined;
  const domain = asciiDomain(value.slice(at + 1));
  return domain ? { local, domain } : undefined;
}

function asciiDomain(input: string): string | undefined {
  const raw = input.replace(/\.$/, '');
  if (raw.startsWith('[')) return undefined;
  const ascii = domainToASCII(raw).toLowerCase();
  return ascii && DOMAIN_RE.test(ascii) ? ascii : undefined;
}

/** The address as counted (distinct recipients) and compared: local part as given, domain lower-cased. */
export function normaliseAddress(address: string): string {
  const mailbox = parseMailbox(address);
  if (mailbox) return `${mailbox.local}@${mailbox.domain}`;
  const at = address.lastIndexOf('@');
  return at < 0 ? address.trim() : `${address.slice(0, at).trim()}@${address.slice(at + 1).trim().toLowerCase()}`;
}

/** Same mailbox? The domain is compared case-insensitively, and so is the local part: mailbox logins are. */
export function sameMailbox(a: Mailbox, b: Mailbox): boolean {
  return a.domain === b.domain && a.local.toLowerCase() === b.local.toLowerCase();
}

export interface HeaderAddresses {
  readonly mailboxes: ReadonlyArray<Readonly<Mailbox>>;
  readonly invalid: readonly string[];
}

/** A message's From header is read by two checks at DATA and by the DKIM signer; the answers are kept as parseMailbox's are. */
const parsedHeaders = new BoundedMemo<HeaderAddresses>(MEMO_ENTRIES, (value) => headerFromAddressesOnce(value));

/**
 * The addresses of one From header value. `invalid` lists the parts that are no mailbox (a bare
 * name, a group, garbage), so that "From: Alice" is refused rather than ignored.
 */
export function headerFromAddresses(value: string): HeaderAddresses {
  return value.length > MEMO_MAX_LENGTH ? headerFromAddressesOnce(value) : parsedHeaders.get(value);
}

function headerFromAddressesOnce(value: string): HeaderAddresses {
  const mailboxes: Mailbox[] = [];
  const invalid: string[] = [];
  for (const item of addressparser(value)) {
    if ('group' in item) {
      invalid.push(`${item.name}:;`);
      continue;
    }
    const mailbox = parseMailbox(item.address);
    if (mailbox) mailboxes.push(mailbox);
    else invalid.push(item.address || item.name);
  }
  return Object.freeze({ mailboxes: Object.freeze(mailboxes), invalid: Object.freeze(invalid) });
}

/** "14:05 UTC", or "2026-11-26 14:05 UTC" on another day; seconds when the wait is short. Never earlier than `at`. */
export function formatUtc(at: number, now: number): string {
  const shortWait = at - now < 5 * 60_000;
  const rounded = shortWait ? Math.ceil(at / 1000) * 1000 : Math.ceil(at / 60_000) * 60_000;
  const iso = new Date(rounded).toISOString();
  const time = shortWait ? iso.slice(11, 19) : iso.slice(11, 16);
  const sameDay = iso.slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return sameDay ? `${time} UTC` : `${iso.slice(0, 10)} ${time} UTC`;
}
