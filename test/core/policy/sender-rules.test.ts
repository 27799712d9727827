import { describe, expect, it } from 'vitest';
import { runChecks } from '../../../core/checks/check.js';
import { headerFrom } from '../../../core/policy/header-from.js';
import { envelopeFromDomain, envelopeSendAs, validSender } from '../../../core/policy/sender-rules.js';
import { world } from './fixtures.js';

const names = (result: { symbols: Array<{ name: string }> }) => result.symbols.map((s) => s.name);

describe('valid sender (requireValidSender)', () => {
  it('refuses the null sender from an authenticated user with 553 5.7.1', async () => {
    const w = await world();
    const result = await validSender(w.resolver).check(await w.mailFacts(''));
    expect(result).toMatchObject({ action: 'reject', code: 553, enhancedCode: '5.7.1' });
    expect(names(result)).toEqual(['SENDER_NULL_NOT_ALLOWED']);
  });

  it('lets an IP user (smarthost) relay DSNs with the null sender', async () => {
    const w = await world({ kind: 'ip' });
    expect((await validSender(w.resolver).check(await w.mailFacts(''))).action).toBe('continue');
  });

  it('refuses a bare name with 553 5.7.1', async () => {
    const w = await world();
    const result = await validSender(w.resolver).check(await w.mailFacts('alice'));
    expect(result).toMatchObject({ action: 'reject', code: 553, enhancedCode: '5.7.1' });
    expect(names(result)).toEqual(['SENDER_SYNTAX_INVALID']);
  });

  it('refuses a sender domain without MX, A or AAAA (550 5.7.1), and one with a null MX', async () => {
    const w = await world({ settings: { sendAsAnyAddress: true } });
    for (const address of ['bob@nowhere.example', 'bob@nullmx.example']) {
      const result = await validSender(w.resolver).check(await w.mailFacts(address));
      expect(result).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
      expect(names(result)).toEqual(['SENDER_DOMAIN_UNRESOLVABLE']);
    }
  });

  it('accepts a domain by MX, by A alone or by AAAA alone, asking the resolver', async () => {
    const w = await world();
    for (const address of ['alice@acme.example', 'x@a-only.example', 'x@v6-only.example']) {
      expect((await validSender(w.resolver).check(await w.mailFacts(address))).action).toBe('continue');
    }
    expect(w.resolver.calls).toContainEqual({ type: 'AAAA', name: 'v6-only.example' });
  });

  it('answers 451 4.4.3 when DNS fails temporarily', async () => {
    const w = await world();
    const result = await validSender(w.resolver).check(await w.mailFacts('x@broken.example'));
    expect(result).toMatchObject({ action: 'tempfail', code: 451, enhancedCode: '4.4.3' });
  });

  it('checks nothing when requireValidSender is off (tenant default)', async () => {
    const w = await world({ tenantSettings: { requireValidSender: false } });
    expect((await validSender(w.resolver).check(await w.mailFacts(''))).action).toBe('continue');
    expect((await validSender(w.resolver).check(await w.mailFacts('x@nowhere.example'))).action).toBe('continue');
    expect(w.resolver.calls).toEqual([]);
  });
});

describe('require FROM domain (requiredFromDomains) on the envelope', () => {
  it('refuses a sender outside the listed domains with 550 5.7.1 and accepts one inside', async () => {
    const w = await world({ kind: 'domain', settings: { requiredFromDomains: ['acme.example', 'example.org'] } });
    const outside = await envelopeFromDomain().check(await w.mailFacts('news@other.example'));
    expect(outside).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
    expect(outside.text).toContain('acme.example, example.org');
    expect(names(outside)).toEqual(['SENDER_DOMAIN_NOT_ALLOWED']);
    expect((await envelopeFromDomain().check(await w.mailFacts('news@Example.ORG'))).action).toBe('continue');
  });

  it('does not restrict when the list is empty', async () => {
    const w = await world({ kind: 'ip' });
    expect((await envelopeFromDomain().check(await w.mailFacts('news@other.example'))).action).toBe('continue');
  });
});

describe('send-as rule (sendAsAnyAddress)', () => {
  it('a mailbox user may send only as itself (domain compared case-insensitively)', async () => {
    const w = await world();
    expect((await envelopeSendAs().check(await w.mailFacts('alice@ACME.example'))).action).toBe('continue');
    const other = await envelopeSendAs().check(await w.mailFacts('bob@acme.example'));
    expect(other).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
    expect(names(other)).toEqual(['SEND_AS_NOT_ALLOWED']);
  });

  it('a domain user may send as any address of its domain, not of another', async () => {
    const w = await world({ kind: 'domain' });
    expect((await envelopeSendAs().check(await w.mailFacts('anyone@acme.example'))).action).toBe('continue');
    expect((await envelopeSendAs().check(await w.mailFacts('anyone@example.org'))).action).toBe('reject');
  });

  it('the tenant may allow any address', async () => {
    const w = await world({ tenantSettings: { sendAsAnyAddress: true } });
    expect((await envelopeSendAs().check(await w.mailFacts('bob@example.org'))).action).toBe('continue');
  });
});

describe('header From (DATA)', () => {
  it('refuses a message without From or with two From headers (550 5.7.1)', async () => {
    const w = await world();
    for (const froms of [[], ['alice@acme.example', 'alice@acme.example']]) {
      const result = await headerFrom().check(await w.dataFacts(froms));
      expect(result).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
      expect(names(result)).toEqual(['HEADER_FROM_COUNT']);
    }
  });

  it('parses display names with quotes and commas', async () => {
    const w = await world();
    const result = await headerFrom().check(await w.dataFacts(['"Doe, Alice" <alice@acme.example>']));
    expect(result.action).toBe('continue');
  });

  it('refuses a From with no address (a bare name)', async () => {
    const w = await world();
    const result = await headerFrom().check(await w.dataFacts(['Alice']));
    expect(names(result)).toEqual(['HEADER_FROM_INVALID']);
  });

  it('applies requiredFromDomains to the header From', async () => {
    const w = await world({ settings: { requiredFromDomains: ['acme.example'], sendAsAnyAddress: true } });
    const result = await headerFrom().check(await w.dataFacts(['"CEO" <ceo@bank.example>']));
    expect(result).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.7.1' });
    expect(names(result)).toEqual(['HEADER_FROM_DOMAIN_NOT_ALLOWED']);
    expect((await headerFrom().check(await w.dataFacts(['Ceo <ceo@acme.example>']))).action).toBe('continue');
  });

  it('applies the send-as rule to the header From, and every address of a list', async () => {
    const w = await world();
    const result = await headerFrom().check(await w.dataFacts(['alice@acme.example, "Bob" <bob@acme.example>']));
    expect(names(result)).toEqual(['HEADER_FROM_SEND_AS_NOT_ALLOWED']);
  });

  it('runs in the DATA list of makeIngressPolicy', async () => {
    const w = await world();
    const outcome = await runChecks(w.policy.data, await w.dataFacts(['a@b.example', 'c@d.example']));
    expect(outcome.final.code).toBe(550);
  });
});
