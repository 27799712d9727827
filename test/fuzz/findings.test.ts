// Regressions for what the fuzzers found, each reduced to its smallest form.
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../adapters/local/sqlite.js';
import { SqliteFingerprintStore } from '../../adapters/local/fingerprint-store.js';
import { parseConfig } from '../../core/config.js';
import { BuiltinSpamRules } from '../../core/scan/builtin-rules.js';
import { fuzzyFingerprint, normaliseWords } from '../../core/scan/fingerprint.js';
import { scanMessage } from '../../core/scan/scan.js';
import { userSettingsSchema } from '../../core/settings.js';

describe('fuzz findings in the MIME path', () => {
  it('a 100 KB token without an @ is normalised in linear time (the e-mail pattern used to backtrack quadratically)', () => {
    const started = Date.now();
    expect(normaliseWords(`hello ${'x'.repeat(100_000)} world`)).toEqual(['hello', 'xxxxxxxxxx'.repeat(10_000), 'world']);
    // The link search looks at every 'h': a token of nothing but almost-links stays linear too.
    expect(normaliseWords(`${'http:/'.repeat(20_000)} ${'h'.repeat(100_000)}`)).toEqual([...Array.from({ length: 20_000 }, () => 'http'), 'h'.repeat(100_000)]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('addresses and links are still dropped from the words', () => {
    expect(normaliseWords('Write to bob@example.org or see https://example.org/x?a=1 now')).toEqual(['write', 'to', 'or', 'see', 'now']);
  });

  it('a body of 1.5 MB of words is fingerprinted in about a second, not ten (words past 20,000 are not hashed)', () => {
    const text = Array.from({ length: 250_000 }, (_, i) => `w${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + ((i * 7) % 26))}`).join(' ');
    const started = Date.now();
    expect(fuzzyFingerprint(text, 20)).toMatch(/^[0-9a-f]{16}$/);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe('fuzz findings in the scan stage', () => {
  it('a message mailparser never finishes (top-level message/rfc822, no body, inline filename) is quarantined as malformed after the engine timeout, not held forever', async () => {
    const raw = Buffer.from('From: alice@acme.test\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline; filename="f.zip"\r\n');
    const scanning = { ...parseConfig({ dataDir: '/tmp/outpost-fuzz' }).scanning, engineTimeoutMs: 500 };
    const db = openDatabase(':memory:');
    const envelope = { messageId: 'm', tenantId: 't', userId: 'u', identity: 'alice@acme.test', mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], blobKey: 'k', size: raw.length, receivedAt: 0, clientIp: '127.0.0.1', helo: 'h' };
    const started = Date.now();
    const outcome = await scanMessage(raw, envelope, userSettingsSchema.parse({}), {
      spamEngine: new BuiltinSpamRules(scanning.builtinRules),
      fingerprints: new SqliteFingerprintStore(db),
      clock: { now: () => Date.now() },
      scanning,
    });
    db.close();
    expect(Date.now() - started).toBeLessThan(5000);
    expect(outcome.verdict).toMatchObject({ action: 'quarantine', kind: 'malformed' });
    expect(JSON.stringify(outcome.verdict.symbols)).toMatch(/did not finish within 500 ms/);
  });
});
