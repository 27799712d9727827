import { beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { SqliteDkimKeyStore } from '../../../adapters/local/dkim-key-store.js';
import { SqliteBatvKeyStore } from '../../../adapters/local/batv-key-store.js';
import { localSecretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { batvValidate } from '../../../core/batv.js';
import { addDkimKey, type DkimPublicKey } from '../../../core/dkim/keys.js';
import { makeOutgoingPreparer } from '../../../core/dkim/sign.js';
import type { Envelope } from '../../../core/ports.js';
import { builtInSettings, type UserSettings } from '../../../core/settings.js';
import { verifyWithDkimpy } from '../../helpers/dkimpy.js';

const T0 = Date.UTC(2026, 10, 25, 12);
const clock = { now: () => T0 };
const db = openDatabase(':memory:');
const box = localSecretBoxFromKey(Buffer.alloc(32, 3));
const keys = new SqliteDkimKeyStore(db, box, clock);
const batvKeys = new SqliteBatvKeyStore(db, box);
const domains: Record<string, string> = { 'example.com': 't1', 'nokey.example': 't1', 'other.example': 't2' };
const records: Record<string, string> = {};
let rsaDefault: DkimPublicKey;

const envelope = (mailFrom = 'ann@example.com'): Envelope => ({
  messageId: 'Q42',
  tenantId: 't1',
  userId: 'u1',
  identity: 'ann@example.com',
  mailFrom,
  rcptTo: ['bob@example.net'],
  blobKey: 'b',
  size: 1,
  receivedAt: T0,
  clientIp: '192.0.2.1',
  helo: 'client',
});
const message = (from: string): Buffer => Buffer.from(`From: Ann <${from}>\nTo: bob@example.net\nSubject: hi\n\nHello\n`);
const preparer = (settings: Partial<UserSettings>, directSmtp = true) =>
  makeOutgoingPreparer({
    keys,
    settingsFor: () => ({ ...builtInSettings, ...settings }),
    tenantOfDomain: async (domain) => domains[domain],
    batvKeys,
    directSmtp,
    clock,
  });

beforeAll(async () => {
  rsaDefault = await addDkimKey(keys, { domain: 'example.com', selector: 'main', now: T0 });
  const ed = await addDkimKey(keys, { domain: 'example.com', selector: 'ed', algorithm: 'ed25519', now: T0 });
  const other = await addDkimKey(keys, { domain: 'other.example', selector: 'x', now: T0 });
  for (const key of [rsaDefault, ed, other]) records[key.dns.name] = key.dns.value;
});

describe('makeOutgoingPreparer', () => {
  it("signs with the domain's default key when the user names no selector; dkimpy verifies", async () => {
    const out = await preparer({})(message('ann@example.com'), envelope());
    expect(out.dkim).toEqual({ signed: true, domain: 'example.com', selector: 'main' });
    expect((await verifyWithDkimpy(out.raw, records)).results).toEqual([true]);
  });

  it("signs with the user's dkimSelector, and falls back to the default for an unknown one", async () => {
    expect((await preparer({ dkimSelector: 'ed' })(message('ann@example.com'), envelope())).dkim.selector).toBe('ed');
    expect((await preparer({ dkimSelector: 'gone' })(message('ann@example.com'), envelope())).dkim.selector).toBe('main');
  });

  it('signs a subdomain From with the parent domain key (relaxed DMARC alignment)', async () => {
    const out = await preparer({})(message('news@mail.example.com'), envelope('news@mail.example.com'));
    expect(out.dkim).toMatchObject({ signed: true, domain: 'example.com' });
    expect((await verifyWithDkimpy(out.raw, records)).results).toEqual([true]);
  });

  it('leaves the message unsigned, saying why, for a domain without key or of another tenant', async () => {
    const noKey = await preparer({})(message('ann@nokey.example'), envelope('ann@nokey.example'));
    expect(noKey.dkim).toEqual({ signed: false, reason: 'nokey.example has no DKIM key' });
    expect(noKey.raw.toString()).not.toContain('DKIM-Signature');
    const foreign = await preparer({})(message('boss@other.example'), envelope('boss@other.example'));
    expect(foreign.dkim).toMatchObject({ signed: false, reason: 'other.example belongs to another tenant' });
    const unserved = await preparer({})(message('x@unknown.example'), envelope('x@unknown.example'));
    expect(unserved.dkim.signed).toBe(false);
  });

  it('BATV-tags the envelope sender on direct SMTP when bounceValidation is on, leaving the header From alone', async () => {
    const out = await preparer({ bounceValidation: true })(message('ann@example.com'), envelope());
    expect(out.mailFrom).toMatch(/^prvs=\d{4}[0-9a-f]{6}=ann@example\.com$/);
    expect(batvValidate(out.mailFrom, await batvKeys.keys(T0), T0).reason).toBe('valid');
    expect(out.raw.toString()).toContain('From: Ann <ann@example.com>');
    expect(out.batv.tagged).toBe(true);
  });

  it('does not tag with bounceValidation off, via SES, or for the null sender', async () => {
    expect((await preparer({ bounceValidation: false })(message('ann@example.com'), envelope())).mailFrom).toBe('ann@example.com');
    expect((await preparer({ bounceValidation: true }, false)(message('ann@example.com'), envelope())).mailFrom).toBe('ann@example.com');
    expect((await preparer({ bounceValidation: true })(message('ann@example.com'), envelope(''))).mailFrom).toBe('');
  });

  it('adds the queue id header that bounces bring back', async () => {
    const out = await preparer({})(message('ann@example.com'), envelope());
    expect(out.raw.toString()).toMatch(/\r\nX-Outpost-Queue-Id: Q42\r\n/);
  });
});

describe('makeOutgoingPreparer without a From header', () => {
  it('delivers unsigned and says so instead of failing delivery', async () => {
    const out = await preparer({})(Buffer.from('To: bob@example.net\r\nSubject: x\r\n\r\nbody\r\n'), envelope());
    expect(out.dkim).toEqual({ signed: false, reason: 'the message has no From header field' });
  });
});
