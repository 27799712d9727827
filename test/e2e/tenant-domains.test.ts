// No tenant sends as another, proven through a running single node with raw SMTP sessions: an
// address in a domain verified by another tenant (or in a subdomain of one) is refused at MAIL
// FROM and in the header From, for mailbox users with sendAsAnyAddress, for domain users and for
// IP users, whatever requireValidSender says; a domain still pending for the sender's tenant is
// refused too. Each refusal leaves nothing behind: no message in the log, nothing at the smarthost.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newVerificationToken } from '../../core/domains.js';
import type { Tenant } from '../../core/identity.js';
import { a } from '../helpers/dns-server.js';
import { parseReply, rawMessage, rawSession, rawTransaction, startE2eNode, testZone, type E2eNode } from '../helpers/e2e-node.js';
import type { RawSmtp } from '../helpers/smtp-client.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

let e2e: E2eNode;
let acme: Tenant;
let globex: Tenant;
const open: RawSmtp[] = [];

beforeAll(async () => {
  e2e = await startE2eNode({
    zone: { ...testZone(), 'news.globex.test': [a('127.0.0.1')], 'pending.test': [a('127.0.0.1')], 'mail.acme-sub.globex.test': [a('127.0.0.1')] },
    config: { policy: { reputation: { throttleScore: 10_000, rejectScore: 20_000 } } },
  });
  acme = await e2e.tenant('acme', ['acme.test']);
  globex = await e2e.tenant('globex', ['globex.test']);
  // acme verified a subdomain of globex's domain itself: that one is acme's to send from.
  await e2e.node.stores.configStore.addDomain(acme.id, 'acme-sub.globex.test');
  await e2e.node.stores.configStore.claimDomain(acme.id, 'pending.test', newVerificationToken());
});
afterEach(() => {
  for (const smtp of open.splice(0)) smtp.close();
});
afterAll(async () => {
  await e2e?.stop();
});

async function session(login?: string): Promise<RawSmtp> {
  const { smtp, auth } = await rawSession(e2e.node.ports.submission, login);
  open.push(smtp);
  if (login !== undefined) expect(auth).toMatch(/^235 /);
  return smtp;
}

function expectRefused(reply: string | undefined, text: RegExp): void {
  const parsed = parseReply(reply ?? '');
  expect({ code: parsed.code, enhanced: parsed.enhanced }, reply).toEqual({ code: 550, enhanced: '5.7.1' });
  expect(parsed.text).toMatch(text);
}

const messageCount = async (): Promise<number> => (await e2e.node.stores.log.search({ limit: 500 })).items.length;

describe('sending as another tenant', () => {
  it('a mailbox user with sendAsAnyAddress cannot use another tenant’s domain or its subdomains, in the envelope or the header From', async () => {
    await e2e.user(acme, 'delegate@acme.test', { sendAsAnyAddress: true });
    const before = await messageCount();
    const smtp = await session('delegate@acme.test');
    expectRefused(await smtp.command('MAIL FROM:<ceo@globex.test>'), /<ceo@globex\.test> is in globex\.test, a domain of another tenant/);
    expectRefused(await smtp.command('MAIL FROM:<ceo@news.globex.test>'), /in globex\.test, a domain of another tenant/);
    expectRefused(await smtp.command('MAIL FROM:<CEO@GLOBEX.TEST>'), /globex\.test, a domain of another tenant/);
    const header = await rawTransaction(smtp, { mailFrom: 'delegate@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('"CEO" <ceo@globex.test>', 'bob@example.org', 'header-as-globex') });
    expect(header.mail).toMatch(/^250 /);
    expectRefused(header.end, /<ceo@globex\.test> is in globex\.test, a domain of another tenant/);
    expect(await messageCount()).toBe(before);

    // Its own domains, a subdomain of globex's that acme verified itself, and domains nobody verified stay open.
    for (const from of ['boss@acme.test', 'x@mail.acme-sub.globex.test', 'news@other.test']) {
      expect(await smtp.command(`MAIL FROM:<${from}>`), from).toMatch(/^250 /);
      await smtp.command('RSET');
    }
  });

  it('requireValidSender=false does not switch the rule off, and an address it cannot read is refused', async () => {
    await e2e.user(acme, 'lax@acme.test', { sendAsAnyAddress: true, requireValidSender: false });
    const before = await messageCount();
    const smtp = await session('lax@acme.test');
    expectRefused(await smtp.command('MAIL FROM:<ceo@globex.test>'), /a domain of another tenant/);
    expectRefused(await smtp.command('MAIL FROM:<"ceo"@globex.test>'), /a domain of another tenant/);
    // What smtp-server's own parser lets through but no domain rule could read.
    for (const unreadable of ['ceo@[127.0.0.1]', 'ceo@globex', 'ceo@192.0.2.1']) {
      expectRefused(await smtp.command(`MAIL FROM:<${unreadable}>`), /not an address whose domain can be checked/);
    }
    const header = await rawTransaction(smtp, { mailFrom: 'lax@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('ceo@news.globex.test', 'bob@example.org', 'lax-header') });
    expectRefused(header.end, /a domain of another tenant/);
    expect(await messageCount()).toBe(before);
  });

  it('an IP user (smarthost) and a domain user are refused the same way', async () => {
    await e2e.node.stores.configStore.createUser({ tenantId: acme.id, kind: 'ip', identity: '127.0.0.1/32', domain: null, passwordHash: null });
    const before = await messageCount();
    const smarthost = await session();
    expectRefused(await smarthost.command('MAIL FROM:<billing@globex.test>'), /a domain of another tenant/);
    const header = await rawTransaction(smarthost, { mailFrom: 'billing@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('billing@globex.test', 'bob@example.org', 'ip-header') });
    expectRefused(header.end, /a domain of another tenant/);
    await e2e.user(acme, 'acme.test', {});
    const domainUser = await session('acme.test');
    expectRefused(await domainUser.command('MAIL FROM:<billing@globex.test>'), /may not send as|a domain of another tenant/);
    expect(await messageCount()).toBe(before);
    await e2e.node.stores.configStore.deleteUser((await e2e.node.stores.configStore.listUsers({ kind: 'ip' }))[0]?.id ?? '');
  });

  it('a domain still pending for the sender’s tenant cannot be sent from', async () => {
    await e2e.user(acme, 'pend@acme.test', { sendAsAnyAddress: true });
    const smtp = await session('pend@acme.test');
    expectRefused(await smtp.command('MAIL FROM:<news@pending.test>'), /pending\.test is not verified yet/);
    const header = await rawTransaction(smtp, { mailFrom: 'pend@acme.test', rcptTo: ['bob@example.org'], message: rawMessage('news@pending.test', 'bob@example.org', 'pending-header') });
    expectRefused(header.end, /pending\.test is not verified yet/);
    // globex has no claim on it: for globex it is a domain nobody verified.
    await e2e.user(globex, 'any@globex.test', { sendAsAnyAddress: true });
    const other = await session('any@globex.test');
    expect(await other.command('MAIL FROM:<news@pending.test>')).toMatch(/^250 /);
  });
});

describe("the operator's ceilings at the ingress", () => {
  it('hold a user whose stored settings are beyond them: "no limit" is lowered to the ceiling', async () => {
    const capped = await e2e.tenant('capped', ['capped.test'], { mailsPerHour: 0, mailsPerMinute: 0 });
    e2e.dns.zone['capped.test'] = [a('127.0.0.1')];
    await e2e.user(capped, 'bulk@capped.test', { mailsPerHour: 0 });
    await e2e.node.stores.configStore.updateTenant(capped.id, { ceilings: { mailsPerHour: 2 } });
    const smtp = await session('bulk@capped.test');
    const { rcpt } = await rawTransaction(smtp, { mailFrom: 'bulk@capped.test', rcptTo: ['c1@example.org', 'c2@example.org', 'c3@example.org'] });
    expect(rcpt[0]).toMatch(/^250 /);
    expect(rcpt[1]).toMatch(/^250 /);
    const parsed = parseReply(rcpt[2] ?? '');
    expect({ code: parsed.code, enhanced: parsed.enhanced }).toEqual({ code: 451, enhanced: '4.7.1' });
    expect(parsed.text).toMatch(/Hourly limit of 2 mails reached/);
  });
});
