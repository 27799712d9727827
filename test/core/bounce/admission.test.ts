import { describe, expect, it } from 'vitest';
import { batvTag, type BatvKey } from '../../../core/batv.js';
import { decideBounceData, decideBounceRcpt, type BounceTenant } from '../../../core/bounce/admission.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 25, 12);
const key: BatvKey = { index: 4, secret: Buffer.alloc(32, 9), createdAt: T0 - DAY, retiredAt: null };
const tenants: Record<string, BounceTenant> = {
  'strict.example': { tenantId: 't-strict', bounceValidation: true },
  'lax.example': { tenantId: 't-lax', bounceValidation: false },
};
const decide = (rcptTo: string, overrides: { mailFrom?: string; acceptedRcpts?: string[]; now?: number } = {}) =>
  decideBounceRcpt({
    mailFrom: overrides.mailFrom ?? '',
    rcptTo,
    acceptedRcpts: overrides.acceptedRcpts ?? [],
    now: overrides.now ?? T0,
    tenantFor: (domain) => tenants[domain],
    batvKeys: [key],
  });
const tagged = batvTag('ann@strict.example', key, T0);
const flipHash = (address: string): string => address.replace(/^(prvs=\d{4})(.)/, (_, head: string, c: string) => head + (c === '0' ? '1' : '0'));

describe('decideBounceRcpt', () => {
  const table: Array<[string, Parameters<typeof decide>, string, string]> = [
    ['a null-sender bounce to a validly tagged address', [tagged], 'accept', 'BOUNCE_ACCEPTED'],
    ['a tagged bounce to a tenant without bounce validation', [batvTag('ann@lax.example', key, T0)], 'accept', 'BOUNCE_ACCEPTED'],
    ['an untagged bounce when the tenant does not validate bounces', ['ann@lax.example'], 'accept', 'BOUNCE_ACCEPTED'],
    ['an untagged bounce when the tenant validates bounces', ['ann@strict.example'], 'reject', 'BATV_UNTAGGED'],
    ['an expired tag', [tagged, { now: T0 + 9 * DAY }], 'reject', 'BATV_EXPIRED'],
    ['a tag too far in the future', [batvTag('ann@strict.example', key, T0 + 60 * DAY)], 'reject', 'BATV_TOO_FAR_IN_FUTURE'],
    ['a bad hash', [flipHash(tagged)], 'reject', 'BATV_BAD_HASH'],
    ['an unknown key index', [batvTag('ann@strict.example', { ...key, index: 8 }, T0)], 'reject', 'BATV_UNKNOWN_KEY'],
    ['a tag moved onto another local part', [tagged.replace('=ann@', '=bob@')], 'reject', 'BATV_BAD_HASH'],
    ['a second recipient of a null-sender message', [tagged, { acceptedRcpts: [tagged] }], 'reject', 'BOUNCE_MULTIPLE_RECIPIENTS'],
    ['a non-null sender', [tagged, { mailFrom: 'someone@example.org' }], 'reject', 'BOUNCE_NOT_NULL_SENDER'],
    ['a domain nobody serves here', [batvTag('ann@elsewhere.example', key, T0)], 'reject', 'BOUNCE_DOMAIN_NOT_SERVED'],
  ];
  for (const [name, args, action, symbol] of table) {
    it(`${name}: ${action} (${symbol})`, async () => {
      const result = await decide(...args);
      expect(result.action).toBe(action);
      expect(result.symbols.map((s) => s.name)).toEqual([symbol]);
      if (action === 'reject') {
        expect(result.code).toBe(550);
        expect(result.enhancedCode).toBe('5.7.1');
        expect(result.text).toBeTruthy();
      }
    });
  }

  it('answers an unknown key and a bad hash with one text, so that a guesser cannot tell them apart', async () => {
    const unknownKey = await decide(batvTag('ann@strict.example', { ...key, index: 8 }, T0));
    const badHash = await decide(flipHash(tagged));
    expect(unknownKey.symbols[0]?.name).toBe('BATV_UNKNOWN_KEY');
    expect(badHash.symbols[0]?.name).toBe('BATV_BAD_HASH');
    expect(unknownKey.text).toBe(badHash.text);
  });

  it('names the tenant and the original address when it accepts', async () => {
    const result = await decide(tagged);
    expect(result.symbols[0]?.evidence).toEqual({ batv: 'valid', tenantId: 't-strict', original: 'ann@strict.example' });
  });
});

describe('decideBounceData', () => {
  it('accepts one recipient with a null sender and refuses anything else', () => {
    expect(decideBounceData({ mailFrom: '', rcptTo: ['a@x.example'] }).action).toBe('accept');
    expect(decideBounceData({ mailFrom: '', rcptTo: ['a@x.example', 'b@x.example'] })).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
    expect(decideBounceData({ mailFrom: 'x@y.example', rcptTo: ['a@x.example'] }).action).toBe('reject');
  });
});

describe('bounceTenantsFrom', () => {
  it("reads the serving tenant and its bounceValidation from the config store", async () => {
    const { openDatabase } = await import('../../../adapters/local/sqlite.js');
    const { SqliteConfigStore } = await import('../../../adapters/local/config-store.js');
    const { bounceTenantsFrom } = await import('../../../core/bounce/admission.js');
    const config = new SqliteConfigStore(openDatabase(':memory:'));
    // Validation is the built-in default: a tenant that sets nothing validates its bounces.
    const strict = await config.createTenant('strict');
    const lax = await config.createTenant('lax', { bounceValidation: false });
    await config.addDomain(strict.id, 'strict.example');
    await config.addDomain(lax.id, 'lax.example');
    const tenantFor = bounceTenantsFrom(config);
    expect(await tenantFor('strict.example')).toEqual({ tenantId: strict.id, bounceValidation: true });
    expect(await tenantFor('lax.example')).toEqual({ tenantId: lax.id, bounceValidation: false });
    expect(await bounceTenantsFrom(config, { bounceValidation: false })('strict.example')).toEqual({ tenantId: strict.id, bounceValidation: false });
    expect(await tenantFor('nobody.example')).toBeUndefined();
  });
});
