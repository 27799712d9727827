import { simpleParser, type ParsedMail } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { describe, expect, it } from 'vitest';
import { SqliteFingerprintStore } from '../../../adapters/local/fingerprint-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { parseConfig } from '../../../core/config.js';
import { BuiltinSpamRules } from '../../../core/scan/builtin-rules.js';
import { GTUBE, type SpamCheckResult, type SpamEngine } from '../../../core/scan/engines.js';
import { scanMessage } from '../../../core/scan/scan.js';
import { userSettingsSchema } from '../../../core/settings.js';

const rules = new BuiltinSpamRules(parseConfig({}).scanning.builtinRules);

function compose(text: string, encoding?: 'quoted-printable' | 'base64'): Promise<Buffer> {
  return new MailComposer({
    from: 'alice@acme.test',
    to: 'bob@example.org',
    subject: 'Quarterly figures',
    date: new Date(),
    messageId: '<bench@acme.test>',
    text,
    ...(encoding ? { textEncoding: encoding } : {}),
  })
    .compile()
    .build();
}

const names = async (raw: Buffer) => (await rules.check(raw)).symbols.map((symbol) => symbol.name);

describe('built-in spam rules', () => {
  it('find GTUBE in plain text, and in quoted-printable and base64 bodies where the encoding hides it', async () => {
    const long = `${'Please find the figures attached. '.repeat(3)}${GTUBE} and more words after it`;
    for (const encoding of [undefined, 'quoted-printable', 'base64'] as const) {
      const raw = await compose(long, encoding);
      if (encoding) expect(raw.includes(GTUBE)).toBe(false);
      expect(await names(raw)).toContain('GTUBE');
    }
  });

  it('score an ordinary message below any spam threshold', async () => {
    const result = await rules.check(await compose('Hello Bob,\n\nthe figures are in the shared folder.\n\nAlice'));
    expect(result.symbols).toEqual([]);
    expect(result.score).toBe(0);
  });

  it('name advance-fee phrases and links to bare IP addresses', async () => {
    const raw = await compose('Dear beneficiary, you have won the lottery. Claim your prize via western union: http://192.0.2.7/claim');
    const found = await names(raw);
    expect(found).toEqual(expect.arrayContaining(['URL_TO_IP', 'ADVANCE_FEE']));
  });
});

describe('built-in spam rules given the scan\'s parse', () => {
  it('read the parse they are given instead of parsing the message again', async () => {
    const withDate = await compose('Hello Bob,\n\nthe figures are in the shared folder.\n\nAlice');
    const withoutDate = Buffer.from('From: alice@acme.test\r\nTo: bob@example.org\r\nSubject: Quarterly figures\r\nMessage-ID: <x@acme.test>\r\n\r\nHello Bob\r\n');
    expect(await names(withoutDate)).toContain('MISSING_DATE');
    // The headers decided on are the parse's: the raw bytes (without a Date) are not parsed again.
    const parse = await simpleParser(withDate, { skipImageLinks: true, skipTextToHtml: true });
    expect((await rules.check(withoutDate, undefined, parse)).symbols.map((symbol) => symbol.name)).not.toContain('MISSING_DATE');
  });

  it('are given the scan\'s parse of the message by scanMessage, and decide the same as on the raw bytes', async () => {
    const raw = await compose(`Dear beneficiary, you have won the lottery: send your bank account details. ${GTUBE}`);
    const given: Array<ParsedMail | undefined> = [];
    const answered: SpamCheckResult[] = [];
    const recording: SpamEngine = {
      name: 'builtin',
      check: async (bytes, meta, parsed) => {
        given.push(parsed);
        const result = await rules.check(bytes, meta, parsed);
        answered.push(result);
        return result;
      },
    };
    const scanning = parseConfig({}).scanning;
    const db = openDatabase(':memory:');
    const envelope = { messageId: 'm', tenantId: 't', userId: 'u', identity: 'alice@acme.test', mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], blobKey: 'k', size: raw.length, receivedAt: 0, clientIp: '127.0.0.1', helo: 'h' };
    const outcome = await scanMessage(raw, envelope, userSettingsSchema.parse({}), { spamEngine: recording, fingerprints: new SqliteFingerprintStore(db), clock: { now: () => 0 }, scanning });
    db.close();
    expect(given).toHaveLength(1);
    expect(given[0]?.subject).toBe('Quarterly figures');
    const onRaw = await rules.check(raw);
    expect(onRaw.symbols.map((symbol) => symbol.name)).toEqual(expect.arrayContaining(['GTUBE', 'ADVANCE_FEE']));
    expect(answered).toEqual([onRaw]);
    expect(outcome.verdict.spam).toBe(true);
  });
});
