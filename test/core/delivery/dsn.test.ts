import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { composeDsn, headerSection } from '../../../core/delivery/dsn.js';

const original = Buffer.from(
  ['From: Alice <alice@sender.test>', 'To: bob@dest.test, nobody@dest.test', 'Subject: quarterly report', 'Message-ID: <m1@sender.test>', '', 'SECRET BODY TEXT', ''].join('\r\n'),
);

const receivedAt = Date.UTC(2025, 0, 2, 3, 4, 5);

function dsn(): Buffer {
  return composeDsn({
    hostname: 'relay.outpost.test',
    envelope: { messageId: 'MSG1', mailFrom: 'alice@sender.test', receivedAt },
    original,
    now: receivedAt + 60_000,
    failures: [
      {
        recipient: 'nobody@dest.test',
        status: '5.1.1',
        diagnostic: '550 5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown in virtual mailbox table',
        diagnosticType: 'smtp',
        remoteMta: 'mx.dest.test',
      },
      { recipient: 'late@slow.test', status: '4.4.7', diagnostic: '451 4.2.0 Mailbox busy', diagnosticType: 'smtp', remoteMta: 'mx.slow.test' },
    ],
  });
}

/** The fields of a message/delivery-status body: the per-message group, then one per recipient. */
function statusGroups(text: string): Array<Record<string, string>> {
  return text
    .replace(/\r\n/g, '\n')
    .replace(/\n[ \t]+/g, ' ')
    .trim()
    .split(/\n\n+/)
    .map((group) => Object.fromEntries(group.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()])));
}

describe('composeDsn', () => {
  it('writes an RFC 3464 multipart/report from MAILER-DAEMON to the envelope sender', async () => {
    const parsed = await simpleParser(dsn());
    expect(parsed.from?.value[0]?.address).toBe('MAILER-DAEMON@relay.outpost.test');
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value[0]?.address : undefined).toBe('alice@sender.test');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
    const contentType = parsed.headers.get('content-type');
    expect(contentType).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'delivery-status' } });
    expect(parsed.text).toContain('<nobody@dest.test>: 550 5.1.1');
  });

  it('reports each failed recipient with Action, Status, Remote-MTA and the SMTP diagnostic', async () => {
    // keepDeliveryStatus: mailparser otherwise folds the report into the text body.
    const parsed = await simpleParser(dsn(), { keepDeliveryStatus: true });
    const report = parsed.attachments.find((part) => part.contentType === 'message/delivery-status');
    expect(report).toBeDefined();
    const [perMessage, first, second] = statusGroups(report?.content.toString('utf8') ?? '');
    expect(perMessage).toEqual({
      'Reporting-MTA': 'dns; relay.outpost.test',
      'X-Outpost-Queue-ID': 'MSG1',
      'Arrival-Date': 'Thu, 02 Jan 2025 03:04:05 +0000',
    });
    expect(first).toEqual({
      'Final-Recipient': 'rfc822; nobody@dest.test',
      Action: 'failed',
      Status: '5.1.1',
      'Remote-MTA': 'dns; mx.dest.test',
      'Diagnostic-Code': 'smtp; 550 5.1.1 <nobody@dest.test>: Recipient address rejected: User unknown in virtual mailbox table',
    });
    expect(second).toMatchObject({ 'Final-Recipient': 'rfc822; late@slow.test', Action: 'failed', Status: '4.4.7' });
  });

  it('quotes the original headers as text/rfc822-headers, without the body', async () => {
    const raw = dsn();
    const parsed = await simpleParser(raw);
    const headers = parsed.attachments.find((part) => part.contentType === 'text/rfc822-headers');
    expect(headers?.content.toString('utf8')).toContain('Subject: quarterly report');
    expect(raw.includes('SECRET BODY TEXT')).toBe(false);
  });

  it('keeps every line within 998 octets and uses CRLF only', () => {
    const text = dsn().toString('utf8');
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
  });

  it('refuses to compose a DSN for a message with the null sender', () => {
    expect(() =>
      composeDsn({ hostname: 'h', envelope: { messageId: 'M', mailFrom: '', receivedAt }, original, now: receivedAt, failures: [] }),
    ).toThrow(/null sender/);
  });

  it('cannot be steered by CR/LF in a remote answer', async () => {
    const raw = composeDsn({
      hostname: 'relay.outpost.test',
      envelope: { messageId: 'MSG1', mailFrom: 'alice@sender.test', receivedAt },
      original,
      now: receivedAt,
      failures: [{ recipient: 'x@dest.test', status: '5.0.0', diagnostic: '550 no\r\nBcc: victim@evil.test', diagnosticType: 'smtp' }],
    });
    const parsed = await simpleParser(raw);
    expect(parsed.bcc).toBeUndefined();
    expect(raw.toString('utf8')).not.toMatch(/^Bcc:/m);
  });
});

describe('headerSection', () => {
  it('ends at the first empty line', () => {
    expect(headerSection(original).toString()).toBe('From: Alice <alice@sender.test>\r\nTo: bob@dest.test, nobody@dest.test\r\nSubject: quarterly report\r\nMessage-ID: <m1@sender.test>\r\n');
  });
});
