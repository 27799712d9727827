// Test messages for the spam engines: GTUBE, an obvious advance-fee spam and an ordinary message.
import { GTUBE } from '../../../core/scan/engines.js';

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n');
const now = (): string => new Date().toUTCString().replace('GMT', '+0000');

export const gtubeMessage = (): Buffer =>
  crlf(['From: alice@example.com', 'To: bob@example.org', 'Subject: test', `Date: ${now()}`, 'Message-ID: <gtube-1@example.com>', '', GTUBE]);

export const spammyMessage = (): Buffer =>
  crlf([
    'From: "WINNER NOTIFICATION" <lottery@winner-prize.example>',
    'To: undisclosed-recipients:;',
    'Subject: CONGRATULATIONS!!! YOU HAVE WON $5,000,000.00 USD',
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset="us-ascii"',
    '',
    '<html><body><font color="#ffffff">hidden text hidden text</font>',
    '<p>Dear Beneficiary,</p>',
    '<p>We are pleased to inform you that you have won the sum of FIVE MILLION UNITED STATES DOLLARS ($5,000,000.00)',
    'in our international lottery promotion. To claim your prize, send your full name, address, telephone number,',
    'bank account details and a processing fee to our claims agent immediately. This is strictly confidential.',
    'Click <a href="http://192.0.2.55/claim.php?id=1">here</a> to claim now! Act now! Limited time! 100% free!</p>',
    '<p>Yours faithfully, Barrister James Williams, Western Union transfer department, next of kin, diplomatic courier.</p>',
    '</body></html>',
  ]);

export const ordinaryMessage = (): Buffer =>
  crlf([
    'From: Alice Example <alice@example.com>',
    'To: Bob Example <bob@example.org>',
    "Subject: Minutes of Tuesday's meeting",
    `Date: ${now()}`,
    `Message-ID: <${Date.now()}.1234@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset="utf-8"',
    '',
    'Hi Bob,',
    '',
    "here are the minutes of Tuesday's meeting. We agreed to move the release to",
    'next Thursday and to review the open tickets on Monday morning.',
    '',
    'Best regards,',
    'Alice',
  ]);

export const meta = {
  user: 'alice@example.com',
  clientIp: '192.0.2.10',
  helo: 'laptop.example.com',
  mailFrom: 'alice@example.com',
  rcptTo: ['bob@example.org'],
  queueId: 'Q1234',
};
