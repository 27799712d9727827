import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../core/config.js';
import { BuiltinSpamRules } from '../../../core/scan/builtin-rules.js';
import { GTUBE } from '../../../core/scan/engines.js';

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
