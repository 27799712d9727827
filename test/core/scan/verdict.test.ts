// The verdict: named reasons, hard findings always held, spam against the threshold and blockSpam.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../core/config.js';
import { BuiltinSpamRules, builtinRulesWarning } from '../../../core/scan/builtin-rules.js';
import { GTUBE } from '../../../core/scan/engines.js';
import { decideVerdict, verdictReasons, type VerdictPolicy } from '../../../core/scan/verdict.js';

const policy: VerdictPolicy = { spamThreshold: 6, blockSpam: true, fuzzySpamScore: 8, bulkScore: 8, bulkIdentities: 10 };
const engine = (score: number) => ({ engine: 'rspamd', score, symbols: [{ name: 'R1', score }] });

describe('decideVerdict', () => {
  it('quarantines a virus with one VIRUS_FOUND per signature, whatever the spam score', () => {
    const verdict = decideVerdict({ mime: [], virus: { infected: true, signatures: ['Eicar-Test', 'Other'], engine: 'clamd' }, spam: engine(0), blockedHashes: [] }, { ...policy, blockSpam: false });
    expect(verdict).toMatchObject({ action: 'quarantine', kind: 'virus', spam: false });
    expect(verdictReasons(verdict).map((item) => item.name)).toEqual(['VIRUS_FOUND', 'VIRUS_FOUND']);
  });

  it('adds fuzzy and bulk scores to the engine score', () => {
    const verdict = decideVerdict({ mime: [], spam: engine(1), blockedHashes: [], fuzzySpam: { fingerprint: 'ab', distance: 2 } }, policy);
    expect(verdict).toMatchObject({ action: 'quarantine', kind: 'spam', score: 9 });
    expect(decideVerdict({ mime: [], spam: engine(1), blockedHashes: [], bulkSenders: 9 }, policy)).toMatchObject({ action: 'deliver', kind: 'clean', score: 1 });
    expect(decideVerdict({ mime: [], spam: engine(1), blockedHashes: [], bulkSenders: 10 }, policy).symbols.map((item) => item.name)).toContain('BULK_CAMPAIGN');
  });

  it('delivers spam when blockSpam is off, still marked as spam', () => {
    expect(decideVerdict({ mime: [], spam: engine(7), blockedHashes: [] }, { ...policy, blockSpam: false })).toMatchObject({ action: 'deliver', kind: 'spam', spam: true });
  });

  it('quarantines a blocked attachment and an unsafe MIME structure', () => {
    const hash = { sha256: 'a'.repeat(64), source: 'operator' as const, reason: 'dropper', addedAt: 1, filename: 'x.exe' };
    expect(decideVerdict({ mime: [], spam: engine(0), blockedHashes: [hash] }, policy)).toMatchObject({ action: 'quarantine', kind: 'blocked' });
    expect(decideVerdict({ mime: [{ name: 'MIME_TOO_DEEP' }], blockedHashes: [] }, policy)).toMatchObject({ action: 'quarantine', kind: 'malformed' });
  });
});

describe('BuiltinSpamRules', () => {
  const rules = new BuiltinSpamRules(parseConfig({}).scanning.builtinRules);
  it('catches GTUBE', async () => {
    const result = await rules.check(Buffer.from(`From: a@example.com\r\nSubject: hi\r\n\r\n${GTUBE}\r\n`));
    expect(result.symbols.map((item) => item.name)).toContain('GTUBE');
    expect(result.score).toBeGreaterThanOrEqual(1000);
  });
  it('scores an ordinary message near zero', async () => {
    const raw = Buffer.from('From: a@example.com\r\nTo: b@example.org\r\nSubject: Lunch\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nLunch at noon?\r\n');
    expect(await rules.check(raw)).toEqual({ score: 0, symbols: [] });
  });
  it('announces itself as a fallback', () => {
    expect(builtinRulesWarning()).toMatch(/^WARNING: no spam engine configured/);
  });
});
