import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseBounce } from '../../../core/bounce/parse.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../fixtures/bounces/${name}`, import.meta.url));

describe('parseBounce', () => {
  it('reads a Postfix RFC 3464 DSN: recipient, status, diagnostic, hard, and our queue id', () => {
    expect(parseBounce(fixture('postfix-dsn-hard.eml'))).toEqual({
      format: 'dsn',
      recipients: [
        {
          address: 'gone@example.net',
          status: '5.1.1',
          action: 'failed',
          diagnostic: '550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table',
          hard: true,
        },
      ],
      originalMessageId: '01JDQX7Z8K4M2N5P6Q7R8S9T0V',
      originalHeaderMessageId: '<report-42@example.com>',
    });
  });

  it('tells a delay (soft) from a failure (hard) in one DSN, and reads the returned message/rfc822', () => {
    const report = parseBounce(fixture('postfix-dsn-delayed-and-failed.eml'));
    expect(report.recipients.map((r) => [r.address, r.action, r.status, r.hard])).toEqual([
      ['Slow@Example.org', 'delayed', '4.4.1', false],
      ['full@example.org', 'failed', '5.2.2', true],
    ]);
    expect(report.originalMessageId).toBe('01JDQY0000000000000000000A');
  });

  it('reads a qmail bounce, taking the status from "(#5.1.1)" and from the remote reply', () => {
    const report = parseBounce(fixture('qmail.eml'));
    expect(report.format).toBe('qmail');
    expect(report.recipients.map((r) => [r.address, r.status, r.hard])).toEqual([
      ['nobody@example.org', '5.1.1', true],
      ['other@example.org', '5.7.1', true],
    ]);
    expect(report.recipients[1]?.diagnostic).toContain('Relaying denied');
    expect(report.originalMessageId).toBe('01JDQZQMAIL000000000000000');
    expect(report.originalHeaderMessageId).toBe('<invite-7@example.com>');
  });

  it('reads an Exim "following address(es) failed" bounce', () => {
    const report = parseBounce(fixture('exim.eml'));
    expect(report.format).toBe('exim');
    expect(report.recipients).toEqual([
      expect.objectContaining({ address: 'left@example.info', status: '5.1.1', action: 'failed', hard: true }),
    ]);
    expect(report.recipients[0]?.diagnostic).toContain('550 5.1.1 <left@example.info>: Recipient address rejected');
    expect(report.originalMessageId).toBe('01JDR0EXIM0000000000000000');
  });

  it('falls back to SMTP transcript lines (sendmail style)', () => {
    const report = parseBounce(fixture('sendmail-plain.eml'));
    expect(report.format).toBe('transcript');
    expect(report.recipients).toEqual([expect.objectContaining({ address: 'ghost@example.biz', status: '5.1.1', hard: true })]);
  });

  it('reports no recipients for a message that is not a bounce', () => {
    const report = parseBounce(Buffer.from('From: a@example.com\r\nSubject: hi\r\n\r\nJust saying hello.\r\n'));
    expect(report).toEqual({ format: 'unknown', recipients: [] });
  });

  it('decodes a base64 delivery-status part and CRLF line endings', () => {
    const status = Buffer.from('Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; b64@example.net\r\nAction: failed\r\nStatus: 5.1.2\r\n').toString('base64');
    const raw = `Content-Type: multipart/report; report-type=delivery-status; boundary=xx\r\n\r\n--xx\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n${status}\r\n--xx--\r\n`;
    expect(parseBounce(Buffer.from(raw)).recipients).toEqual([{ address: 'b64@example.net', status: '5.1.2', action: 'failed', diagnostic: '', hard: true }]);
  });
});
