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

  // Bounces arrive from anyone on port 25: a crafted one must not stall the bounce stage.
  const hostile: Record<string, string> = {
    'a 100 kB line of dashes': `Subject: x\r\n\r\n${'-'.repeat(100_000)}\r\n`,
    'a DSN recipient "a.a.a...@"': `Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; ${'a.'.repeat(50_000)}@\r\n`,
    'a transcript line "a@a@a@..."': `Subject: x\r\n\r\n550 ${'a@'.repeat(50_000)}\r\n`,
    'random bytes': Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 256)).toString('latin1'),
  };
  for (const [name, text] of Object.entries(hostile)) {
    it(`parses hostile input in linear time without throwing: ${name}`, () => {
      const started = performance.now();
      const report = parseBounce(Buffer.from(text, 'latin1'));
      expect(Array.isArray(report.recipients)).toBe(true);
      expect(performance.now() - started).toBeLessThan(1000);
    });
  }

  it('still finds the returned headers after an Exim marker line', () => {
    const raw = 'Subject: Mail delivery failed\r\n\r\nThe following address(es) failed:\r\n\r\n  gone@example.org\r\n    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\r\n    550 5.1.1 User unknown\r\n\r\n------ This is a copy of the message, including all the headers. ------\r\nX-Outpost-Queue-Id: Q-123\r\nSubject: hi\r\n\r\nbody\r\n';
    const report = parseBounce(Buffer.from(raw));
    expect(report).toMatchObject({ format: 'exim', originalMessageId: 'Q-123' });
    expect(report.recipients).toEqual([expect.objectContaining({ address: 'gone@example.org', status: '5.1.1', hard: true })]);
  });
});
