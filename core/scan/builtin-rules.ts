// The built-in spam rules: the fallback SpamEngine when neither rspamd nor spamd is configured.
// Deliberately small (GTUBE and a few obvious patterns); an operator should run a real engine,
// which is why its use is announced loudly at start (builtinRulesWarning).
import { simpleParser, type ParsedMail } from 'mailparser';
import type { Symbol } from '../checks/check.js';
import type { Config } from '../config.js';
import { GTUBE, type SpamCheckMeta, type SpamCheckResult, type SpamEngine } from './engines.js';

export type BuiltinRuleScores = Config['scanning']['builtinRules'];

// Phrases of advance-fee and lottery fraud; three distinct ones in one message is a strong sign.
const ADVANCE_FEE_PHRASES = [
  'dear beneficiary',
  'next of kin',
  'processing fee',
  'claim your prize',
  'you have won',
  'lottery',
  'western union',
  'bank account details',
  'strictly confidential',
  'million united states dollars',
  'diplomatic courier',
  'inheritance fund',
];

const URL_TO_IP = /https?:\/\/(\d{1,3}\.){3}\d{1,3}(?=[:/"'\s>]|$)/i;

export function builtinRulesWarning(): string {
  return (
    'WARNING: no spam engine configured (scanning.rspamdUrl / OUTPOST_RSPAMD_URL or scanning.spamd / OUTPOST_SPAMD); ' +
    'outgoing mail is checked only by the built-in rules (GTUBE and a few obvious patterns). ' +
    'Run rspamd or SpamAssassin spamd for real spam filtering.'
  );
}

export class BuiltinSpamRules implements SpamEngine {
  readonly name = 'builtin';

  constructor(private readonly scores: BuiltinRuleScores) {}

  /** Reads `parsed`, the scan's parse of `raw`, when given; else parses `raw` itself. */
  async check(raw: Buffer, _meta?: SpamCheckMeta, parsed?: ParsedMail): Promise<SpamCheckResult> {
    const symbols: Symbol[] = [];
    const add = (name: string, score: number, evidence?: Record<string, unknown>): void => {
      symbols.push(evidence ? { name, score, evidence } : { name, score });
    };
    const mail = parsed ?? (await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true }));
    const subject = mail.subject ?? '';
    const html = typeof mail.html === 'string' ? mail.html : '';
    const text = `${subject}\n${mail.text ?? ''}\n${html}`;
    // GTUBE in the raw bytes (any part) or in the decoded text (quoted-printable or base64 bodies,
    // where the encoding splits or hides the pattern).
    if (raw.includes(GTUBE) || text.includes(GTUBE)) add('GTUBE', this.scores.gtube);
    const letters = subject.replace(/[^A-Za-z]/g, '');
    if (letters.length >= 10 && letters === letters.toUpperCase()) add('SUBJECT_ALL_CAPS', this.scores.subjectAllCaps);
    if (!mail.headers.has('date')) add('MISSING_DATE', this.scores.missingDate);
    if (!mail.headers.has('message-id')) add('MISSING_MESSAGE_ID', this.scores.missingMessageId);
    const ipUrl = URL_TO_IP.exec(text);
    if (ipUrl) add('URL_TO_IP', this.scores.urlToIp, { url: ipUrl[0] });
    const lower = text.toLowerCase().replace(/\s+/g, ' ');
    const phrases = ADVANCE_FEE_PHRASES.filter((phrase) => lower.includes(phrase));
    if (phrases.length >= 3) add('ADVANCE_FEE', this.scores.advanceFee, { phrases });
    const score = symbols.reduce((sum, item) => sum + (item.score ?? 0), 0);
    return { score, symbols };
  }
}
