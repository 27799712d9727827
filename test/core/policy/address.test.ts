import { describe, expect, it } from 'vitest';
import { formatUtc, headerFromAddresses, normaliseAddress, parseMailbox } from '../../../core/policy/address.js';

describe('addresses', () => {
  it('parses envelope mailboxes and lower-cases only the domain', () => {
    expect(parseMailbox('Bob.Smith@Example.ORG')).toEqual({ local: 'Bob.Smith', domain: 'example.org' });
    expect(parseMailbox('"odd local"@example.org')).toEqual({ local: '"odd local"', domain: 'example.org' });
    expect(parseMailbox('bücher@bücher.example')).toEqual({ local: 'bücher', domain: 'xn--bcher-kva.example' });
    for (const bad of ['', 'bob', '@example.org', 'bob@', 'bob@@example.org', 'a..b@example.org', 'bob@[192.0.2.1]', 'bob@localhost', `${'x'.repeat(65)}@example.org`]) {
      expect(parseMailbox(bad)).toBeUndefined();
    }
  });

  it('normalises for distinct counting: domain case-insensitive, local part kept', () => {
    expect(normaliseAddress('Bob@EXAMPLE.org')).toBe('Bob@example.org');
    expect(normaliseAddress('Bob@EXAMPLE.org')).not.toBe(normaliseAddress('bob@example.org'));
  });

  it('reads header From values with display names, comments and groups', () => {
    expect(headerFromAddresses('"Doe, John" <John@Example.org>').mailboxes).toEqual([{ local: 'John', domain: 'example.org' }]);
    expect(headerFromAddresses('john@example.org (John)').mailboxes).toEqual([{ local: 'john', domain: 'example.org' }]);
    expect(headerFromAddresses('undisclosed-recipients:;').invalid).toHaveLength(1);
    expect(headerFromAddresses('John Doe').mailboxes).toEqual([]);
  });

  it('answers a repeated parse from memory, frozen, since every check of a message shares it', () => {
    const first = parseMailbox('Kept.Sender@Example.org');
    expect(parseMailbox('Kept.Sender@Example.org')).toBe(first);
    expect(first).toEqual({ local: 'Kept.Sender', domain: 'example.org' });
    expect(() => Object.assign(first ?? {}, { domain: 'other.example' })).toThrow(TypeError);
    expect(parseMailbox('Kept.Sender@Example.org')).toEqual({ local: 'Kept.Sender', domain: 'example.org' });
    // A refusal is remembered as a refusal, not as a miss that parses again into something else.
    expect(parseMailbox('kept@@example.org')).toBeUndefined();
    expect(parseMailbox('kept@@example.org')).toBeUndefined();

    const header = headerFromAddresses('"Kept" <kept@example.org>, bad');
    expect(headerFromAddresses('"Kept" <kept@example.org>, bad')).toBe(header);
    expect(header.invalid).toEqual(['bad']);
    expect(() => (header.mailboxes as Array<{ local: string; domain: string }>).push({ local: 'eve', domain: 'example.net' })).toThrow(TypeError);
    expect(() => (header.invalid as string[]).pop()).toThrow(TypeError);
    expect(headerFromAddresses('"Kept" <kept@example.org>, bad').mailboxes).toEqual([{ local: 'kept', domain: 'example.org' }]);
  });

  it('parses a value too long to keep each time, with the same answer', () => {
    const long = `"${'n'.repeat(1200)}" <long@example.org>`;
    const first = headerFromAddresses(long);
    expect(headerFromAddresses(long)).not.toBe(first);
    expect(headerFromAddresses(long)).toEqual(first);
    expect(first.mailboxes).toEqual([{ local: 'long', domain: 'example.org' }]);
  });

  it('formats retry times in UTC, rounded up, with the date on another day', () => {
    const now = Date.UTC(2026, 10, 25, 14, 0, 0);
    expect(formatUtc(now + 30_500, now)).toBe('14:00:31 UTC');
    expect(formatUtc(now + 65 * 60_000 + 1, now)).toBe('15:06 UTC');
    expect(formatUtc(now + 24 * 3_600_000, now)).toBe('2026-11-26 14:00 UTC');
  });
});
