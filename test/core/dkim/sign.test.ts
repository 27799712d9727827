import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import nodemailer from 'nodemailer';
import type { AddressInfo } from 'node:net';
import { dkimDnsRecord, generateDkimKeyPair, type DkimAlgorithm } from '../../../core/dkim/keys.js';
import { headerFromDomains, normaliseLineEndings, signMessage } from '../../../core/dkim/sign.js';
import { verifyWithDkimpy } from '../../helpers/dkimpy.js';

const DOMAIN = 'example.com';
const keys: Record<DkimAlgorithm, { publicKey: string; privateKeyPem: string }> = {
  rsa: { publicKey: '', privateKeyPem: '' },
  ed25519: { publicKey: '', privateKeyPem: '' },
};
const recordsFor = (algorithm: DkimAlgorithm, selector = 'sel1'): Record<string, string> => ({
  [`${selector}._domainkey.${DOMAIN}`]: dkimDnsRecord(DOMAIN, selector, algorithm, keys[algorithm].publicKey).value,
});

const longLine = 'x'.repeat(1500);
const messages: Record<string, string> = {
  simple: 'From: Ann <ann@example.com>\r\nTo: bob@example.net\r\nSubject: Hello\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHi Bob.\r\n',
  'long lines': `From: ann@example.com\r\nTo: bob@example.net\r\nSubject: ${'long subject '.repeat(30)}\r\n\r\n${longLine}\r\n${longLine} ${longLine}\r\n`,
  'folded headers and unusual whitespace':
    'From: "Ann\tExample"   <ann@example.com>\r\nTo: bob@example.net,\r\n\tcarol@example.net,\r\n    dave@example.net\r\nSubject:   spaced\t\tout  \r\n  and folded\r\nCc:carol@example.net\r\nX-Empty:\r\n\r\n  leading spaces \t\r\n\ttabs\t\t\r\n\r\n\r\n\r\n',
  'bare LF line endings': 'From: ann@example.com\nTo: bob@example.net\nSubject: unix\n\nline one\nline two   \n\n',
  'bare CR line endings': 'From: ann@example.com\rTo: bob@example.net\rSubject: old mac\r\rline one\r',
  'empty body': 'From: ann@example.com\r\nTo: bob@example.net\r\nSubject: nothing\r\n\r\n',
  'dot lines (dot-stuffed on the wire)': 'From: ann@example.com\r\nTo: bob@example.net\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\nend\r\n',
  mime:
    'From: ann@example.com\r\nTo: bob@example.net\r\nSubject: mime\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe\r\n--b1--\r\n',
};

beforeAll(async () => {
  keys.rsa = await generateDkimKeyPair('rsa');
  keys.ed25519 = await generateDkimKeyPair('ed25519');
});

describe('signMessage', () => {
  for (const algorithm of ['rsa', 'ed25519'] as const) {
    for (const [name, text] of Object.entries(messages)) {
      it(`produces an ${algorithm} signature that dkimpy verifies: ${name}`, async () => {
        const signed = await signMessage(Buffer.from(text, 'utf8'), { domain: DOMAIN, selector: 'sel1', privateKey: keys[algorithm].privateKeyPem, algorithm });
        const result = await verifyWithDkimpy(signed, recordsFor(algorithm));
        expect(result.signatures).toBe(1);
        expect(result.results, result.log).toEqual([true]);
      });
    }
  }

  it('uses the requested algorithm, relaxed/relaxed and no l= tag', async () => {
    const signed = (await signMessage(Buffer.from(messages.simple ?? ''), { domain: DOMAIN, selector: 'sel1', privateKey: keys.ed25519.privateKeyPem, algorithm: 'ed25519' })).toString();
    const header = signed.slice(0, signed.indexOf('\r\nFrom:')).replace(/\r\n\s+/g, ' ');
    expect(header).toMatch(/a=ed25519-sha256;/);
    expect(header).toMatch(/c=relaxed\/relaxed;/);
    expect(header).toMatch(/d=example\.com;/);
    expect(header).toMatch(/s=sel1;/);
    expect(header).not.toMatch(/[;\s]l=/);
  });

  it('over-signs singletons: one more From, Subject, Date, To, Cc and Message-ID in h= than present', async () => {
    const signed = (await signMessage(Buffer.from(messages.simple ?? ''), { domain: DOMAIN, selector: 'sel1', privateKey: keys.rsa.privateKeyPem, algorithm: 'rsa' })).toString();
    const h = /h=([^;]+);/.exec(signed.replace(/\r\n\s+/g, ' '))?.[1]?.split(':').map((name) => name.trim().toLowerCase()) ?? [];
    const count = (name: string): number => h.filter((item) => item === name).length;
    for (const name of ['from', 'subject', 'date', 'to', 'message-id']) expect(count(name), name).toBe(2);
    expect(count('cc')).toBe(1); // absent, signed as absent
    expect(count('reply-to')).toBe(1);
  });

  it('a From or Subject added after signing breaks the signature (over-signing at work)', async () => {
    const signed = await signMessage(Buffer.from(messages.simple ?? ''), { domain: DOMAIN, selector: 'sel1', privateKey: keys.rsa.privateKeyPem, algorithm: 'rsa' });
    for (const extra of ['From: mallory@evil.example\r\n', 'Subject: Urgent: pay now\r\n', 'Cc: mallory@evil.example\r\n']) {
      const text = signed.toString('latin1');
      const tampered = Buffer.from(text.replace('\r\n\r\n', `\r\n${extra}\r\n`), 'latin1');
      const result = await verifyWithDkimpy(tampered, recordsFor('rsa'));
      expect(result.results, extra).toEqual([false]);
    }
  });

  it('a changed body fails verification', async () => {
    const signed = await signMessage(Buffer.from(messages.simple ?? ''), { domain: DOMAIN, selector: 'sel1', privateKey: keys.rsa.privateKeyPem, algorithm: 'rsa' });
    const tampered = Buffer.from(signed.toString('latin1').replace('Hi Bob.', 'Hi Bob!'), 'latin1');
    expect((await verifyWithDkimpy(tampered, recordsFor('rsa'))).results).toEqual([false]);
  });

  it('refuses a message without a From header field', async () => {
    await expect(
      signMessage(Buffer.from('To: bob@example.net\r\n\r\nx\r\n'), { domain: DOMAIN, selector: 'sel1', privateKey: keys.rsa.privateKeyPem, algorithm: 'rsa' }),
    ).rejects.toThrow(/From/);
  });

  it('refuses a key that is not of the algorithm it is to sign with, or is no key, and signs nothing', async () => {
    const raw = Buffer.from('From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n');
    const options = { domain: DOMAIN, selector: 'sel1' };
    await expect(signMessage(raw, { ...options, algorithm: 'ed25519', privateKey: keys.rsa.privateKeyPem })).rejects.toThrow(/is rsa, not ed25519/);
    await expect(signMessage(raw, { ...options, algorithm: 'rsa', privateKey: keys.ed25519.privateKeyPem })).rejects.toThrow(/is ed25519, not rsa/);
    await expect(signMessage(raw, { ...options, algorithm: 'rsa', privateKey: 'not a key' })).rejects.toThrow();
  });

  it('normalises bare CR and LF to CRLF', () => {
    expect(normaliseLineEndings(Buffer.from('a\nb\rc\r\nd')).toString()).toBe('a\r\nb\r\nc\r\nd');
    // Each bare ending alone, at either end of the message, is found and fixed.
    for (const [given, wanted] of [['\nab', '\r\nab'], ['ab\r', 'ab\r\n'], ['a\r\r\nb', 'a\r\n\r\nb'], ['a\r\n\nb', 'a\r\n\r\nb'], ['\r', '\r\n'], ['\n', '\r\n']]) {
      expect(normaliseLineEndings(Buffer.from(given!)).toString()).toBe(wanted);
    }
    // A message that has only CRLF is handed back as it is.
    const clean = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    expect(normaliseLineEndings(clean)).toBe(clean);
    expect(normaliseLineEndings(Buffer.alloc(0)).length).toBe(0);
  });

  it("reads the From domains of the header with the policy's parser", () => {
    expect(headerFromDomains(Buffer.from('From: "Ann, Example" <ann@Example.com>\r\nSubject: x\r\n\r\nbody'))).toEqual({ domains: ['example.com'] });
    expect(headerFromDomains(Buffer.from('From: ann@example.com (Ann)\r\n\r\nbody'))).toEqual({ domains: ['example.com'] });
    expect(headerFromDomains(Buffer.from('Subject: x\r\n\r\nFrom: not@header.example'))).toEqual({ reason: 'the message has no From header field' });
  });
});

describe('a signed message after a real SMTP hop (nodemailer client -> smtp-server)', () => {
  let server: SMTPServer;
  let port = 0;
  const received: Array<{ from: string; to: string[]; data: Buffer }> = [];

  beforeAll(async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      disableReverseLookup: true,
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            data: Buffer.concat(chunks),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  for (const algorithm of ['rsa', 'ed25519'] as const) {
    for (const name of ['bare LF line endings', 'dot lines (dot-stuffed on the wire)', 'folded headers and unusual whitespace', 'long lines']) {
      it(`${algorithm}: dkimpy verifies what the server received (${name})`, async () => {
        const signed = await signMessage(Buffer.from(messages[name] ?? ''), { domain: DOMAIN, selector: 'sel1', privateKey: keys[algorithm].privateKeyPem, algorithm });
        const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
        await transport.sendMail({ envelope: { from: 'prvs=0123abcdef=ann@example.com', to: ['bob@example.net'] }, raw: signed });
        transport.close();
        const got = received.pop();
        expect(got?.from).toBe('prvs=0123abcdef=ann@example.com');
        const result = await verifyWithDkimpy(got?.data ?? Buffer.alloc(0), recordsFor(algorithm));
        expect(result.results, result.log).toEqual([true]);
      });
    }
  }
});
