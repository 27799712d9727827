// Signing and bounces end to end on the single node. The smarthost is the smtp-server-based test
// MX, which answers 550 5.1.1 for one address at RCPT and keeps the exact bytes it received.
// Every delivered message is DKIM-signed with the sender's selector and verified by dkimpy as the
// MX received it; the envelope sender carries a BATV tag (tenant setting bounceValidation). The
// test then plays the remote MTA that bounces later: it sends an RFC 3464 DSN with MAIL FROM:<>
// to that tagged return path at the bounce listener, and the node suppresses the address, counts
// it against the user and refuses it at RCPT next time. Forged bounces are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDkimKey, type DkimPublicKey } from '../../core/dkim/keys.js';
import type { OutgoingUser, Tenant } from '../../core/identity.js';
import { counterKeys } from '../../core/policy/keys.js';
import { verifyWithDkimpy } from '../helpers/dkimpy.js';
import { a } from '../helpers/dns-server.js';
import { headersOf, messageWithStatus, rawMessage, rawSession, rawTransaction, startE2eNode, submit, testZone, tryEnvelope, type E2eNode } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';
import { dsnFor, sendBounce } from '../helpers/bounce-client.js';
import { startTestMx, type ReceivedMail, type TestMx } from '../helpers/test-mx.js';

const DAY_MS = 86_400_000;
const UNKNOWN_AT_RCPT = 'nobody@example.org';

let testMx: TestMx;
let e2e: E2eNode;
let tenant: Tenant;
let alice: OutgoingUser;
let keys: { main: DkimPublicKey; alt: DkimPublicKey };
let dkimRecords: Record<string, string>;

beforeAll(async () => {
  testMx = await startTestMx({
    rcptAnswer: (address) => (address === UNKNOWN_AT_RCPT ? { code: 550, text: '5.1.1 <nobody@example.org>: Recipient address rejected: User unknown' } : undefined),
  });
  e2e = await startE2eNode({ zone: { ...testZone(), 'plain.test': [a('127.0.0.1')] }, relayHost: `127.0.0.1:${testMx.port}` });
  tenant = await e2e.tenant('acme', ['acme.test', 'plain.test'], { bounceValidation: true });
  const now = Date.now();
  keys = {
    main: await addDkimKey(e2e.node.stores.dkimKeys, { domain: 'acme.test', selector: 'main', now }),
    alt: await addDkimKey(e2e.node.stores.dkimKeys, { domain: 'acme.test', selector: 'alt', algorithm: 'ed25519', now }),
  };
  dkimRecords = Object.fromEntries(Object.values(keys).map((key) => [key.dns.name, key.dns.value]));
  alice = await e2e.user(tenant, 'alice@acme.test', { dkimSelector: 'alt' });
  await e2e.user(tenant, 'carol@acme.test');
  await e2e.user(tenant, 'dan@plain.test');
});

afterAll(async () => {
  await e2e?.stop();
  await testMx?.stop();
});

const subjectOf = (mail: ReceivedMail): string | undefined => headersOf(mail.data).get('subject')?.[0];
const received = (what: string, match: (mail: ReceivedMail) => boolean): Promise<ReceivedMail> =>
  waitFor(what, async () => testMx.received.find(match));
const dkimTags = (mail: ReceivedMail): Record<string, string> => {
  const value = headersOf(mail.data).get('dkim-signature')?.[0] ?? '';
  return Object.fromEntries(value.split(';').map((tag) => tag.trim().split('=').map((part) => part.trim())).filter((pair) => pair.length >= 2).map(([k, v]) => [k ?? '', v ?? '']));
};
const invalidRecipients = (user: OutgoingUser): Promise<number> => e2e.node.stores.counters.total(counterKeys.invalidRecipients(user.id), DAY_MS);
const suppressed = async (address: string) => e2e.node.stores.suppression.find(tenant.id, address, Date.now());
const BATV_RETURN_PATH = /^prvs=\d{4}[0-9a-f]{6}=alice@acme\.test$/;

/** One bounce attempt at the bounce listener: the answers to MAIL, RCPT and (if it got that far) DATA. */
const bounce = sendBounce;

/** The bounce stage has nothing left to do: no job queued or in flight, no bounce file stored. */
const bounceStageIdle = (): Promise<true> =>
  waitFor('the bounce stage to be idle', async () => {
    const depth = await e2e.node.stores.queue.depth('bounce');
    const files = await e2e.node.stores.blobs.list('bounces/');
    return depth.visible + depth.inFlight + depth.delayed === 0 && files.length === 0 ? true : undefined;
  });

describe('DKIM signing on delivery', () => {
  it("signs with the user's selector (Ed25519) and the signature verifies with dkimpy as the MX received it", async () => {
    const id = await submit(e2e.node.ports.submission, {
      from: 'alice@acme.test',
      to: ['bob@example.org'],
      subject: 'signed with alt',
      text: `A line with trailing spaces   \n\n\nand a long line ${'y'.repeat(1500)}\n.\nand a lone dot`,
    });
    const mail = await received('alice\'s signed message', (m) => subjectOf(m) === 'signed with alt');
    await messageWithStatus(e2e.node, id, 'delivered');
    expect(mail.rcptTo).toEqual(['bob@example.org']);
    expect(mail.mailFrom).toMatch(BATV_RETURN_PATH);
    expect(headersOf(mail.data).get('from')).toEqual(['alice@acme.test']);
    expect(dkimTags(mail)).toMatchObject({ d: 'acme.test', s: 'alt', a: 'ed25519-sha256', c: 'relaxed/relaxed' });
    const verdict = await verifyWithDkimpy(mail.data, dkimRecords);
    expect(verdict.results, verdict.log).toEqual([true]);
    const log = await e2e.node.stores.log.get(id);
    expect(log?.events.find((e) => e.event === 'dkim-signed')?.detail).toMatchObject({ signed: true, selector: 'alt', domain: 'acme.test' });
  });

  it("signs with the domain's default selector (RSA) when the user names none", async () => {
    await submit(e2e.node.ports.submission, { from: 'carol@acme.test', to: ['bob@example.org'], subject: 'signed with main' });
    const mail = await received('carol\'s signed message', (m) => subjectOf(m) === 'signed with main');
    expect(dkimTags(mail)).toMatchObject({ d: 'acme.test', s: 'main', a: 'rsa-sha256' });
    const verdict = await verifyWithDkimpy(mail.data, dkimRecords);
    expect(verdict.results, verdict.log).toEqual([true]);
    // A signature that does not verify is told apart: the wrong key for the selector fails.
    const swapped = await verifyWithDkimpy(mail.data, { [keys.main.dns.name]: keys.alt.dns.value });
    expect(swapped.results).toEqual([false]);
  });

  it('delivers mail of a domain with no key unsigned, and the message log says so', async () => {
    const id = await submit(e2e.node.ports.submission, { from: 'dan@plain.test', to: ['bob@example.org'], subject: 'unsigned' });
    const mail = await received('dan\'s message', (m) => subjectOf(m) === 'unsigned');
    expect(headersOf(mail.data).has('dkim-signature')).toBe(false);
    const log = await messageWithStatus(e2e.node, id, 'delivered');
    const unsigned = log.events.find((e) => e.event === 'dkim-unsigned');
    expect(unsigned?.detail).toMatchObject({ signed: false });
    expect(String(unsigned?.detail.reason)).toMatch(/plain\.test has no DKIM key/);
    expect(log.events.some((e) => e.event === 'dkim-signed')).toBe(false);
  });
});

describe('bounces', () => {
  it('acts on a DSN to the tagged return path: suppression, invalid-recipient counter, log, forward, then 550 5.1.1 at RCPT', async () => {
    const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: ['bob@example.org', 'carl@example.org'], subject: 'to be bounced later' });
    const original = await received('the message to bounce', (m) => subjectOf(m) === 'to be bounced later');
    await messageWithStatus(e2e.node, id, 'delivered');
    expect(original.mailFrom).toMatch(BATV_RETURN_PATH);
    expect(await suppressed('carl@example.org')).toBeUndefined();
    const before = await invalidRecipients(alice);

    const answers = await bounce(e2e.node.ports.bounce, '', original.mailFrom, dsnFor(original, ['carl@example.org']));
    expect(answers.mail).toMatch(/^250/);
    expect(answers.rcpt).toMatch(/^250/);
    expect(answers.data).toMatch(/^250/);

    const entry = await waitFor('the suppression entry for carl', () => suppressed('carl@example.org'));
    expect(entry).toMatchObject({ source: 'bounce', address: 'carl@example.org' });
    expect(entry.reason).toContain('5.1.1');
    const history = await waitFor('the bounce in the message log', async () => {
      const found = await e2e.node.stores.log.get(id);
      return found?.events.some((e) => e.event === 'bounce-received') ? found : undefined;
    });
    const event = history.events.find((e) => e.event === 'bounce-received');
    expect(event?.detail).toMatchObject({ format: 'dsn', recipients: [{ address: 'carl@example.org', status: '5.1.1', hard: true }] });
    expect(await invalidRecipients(alice)).toBe(before + 1);
    // bob was not bounced: not suppressed.
    expect(await suppressed('bob@example.org')).toBeUndefined();

    // The tenant wants its bounces: forwarded to the sender, tag stripped, null sender.
    const forwarded = await received('the forwarded bounce', (m) => m.rcptTo.includes('alice@acme.test') && m.data.includes(`X-Outpost-Bounce-For: ${id}`));
    expect(forwarded.mailFrom).toBe('');
    expect(forwarded.rcptTo).toEqual(['alice@acme.test']);

    const next = await tryEnvelope(e2e.node.ports.submission, 'alice@acme.test', ['carl@example.org', 'bob@example.org']);
    expect(next.mail).toMatch(/^250/);
    expect(next.rcpts[0]).toMatch(/^550 5\.1\.1 .*carl@example\.org.*suppression list/);
    expect(next.rcpts[1]).toMatch(/^250/);
  });

  it('refuses forged bounces with 550 5.7.1: untagged, altered tag, tag moved to another user, not a null sender', async () => {
    // A message of alice's to bob: each forged attempt carries a real report about it, which would
    // suppress bob and count against alice had the attempt got past RCPT.
    const original = await received('a tagged message to bob', (m) => BATV_RETURN_PATH.test(m.mailFrom) && m.rcptTo.includes('bob@example.org'));
    const tagged = original.mailFrom;
    const report = dsnFor(original, ['bob@example.org']);
    const before = await invalidRecipients(alice);
    const port = e2e.node.ports.bounce;
    expect((await bounce(port, '', 'alice@acme.test', report)).rcpt).toMatch(/^550 5\.7\.1 /);
    const hash = tagged.slice(9, 15);
    const altered = tagged.slice(0, 9) + (hash[0] === 'a' ? 'b' : 'a') + tagged.slice(10);
    expect((await bounce(port, '', altered, report)).rcpt).toMatch(/^550 5\.7\.1 /);
    expect((await bounce(port, '', tagged.replace('=alice@', '=carol@'), report)).rcpt).toMatch(/^550 5\.7\.1 /);
    expect((await bounce(port, 'someone@example.org', tagged, report)).rcpt).toMatch(/^550 5\.7\.1 .*MAIL FROM:<>/);
    // A refused bounce changes nothing: once the bounce stage is idle, bob is still not suppressed.
    await bounceStageIdle();
    expect(await suppressed('bob@example.org')).toBeUndefined();
    expect(await invalidRecipients(alice)).toBe(before);
  });

  it('turns a 550 at RCPT from the MX into a DSN to the sender, a suppression entry and a refusal next time', async () => {
    const before = await invalidRecipients(alice);
    const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: ['bob@example.org', UNKNOWN_AT_RCPT], subject: 'one bad recipient' });
    const delivered = await received('the message to the good recipient', (m) => subjectOf(m) === 'one bad recipient');
    expect(delivered.rcptTo).toEqual(['bob@example.org']);
    const log = await messageWithStatus(e2e.node, id, 'partially-delivered');
    expect(log.events.find((e) => e.event === 'bounced')?.detail).toMatchObject({ recipient: UNKNOWN_AT_RCPT, status: '5.1.1' });
    expect(log.events.some((e) => e.event === 'dsn-sent')).toBe(true);

    const dsn = await received('the DSN to alice', (m) => m.rcptTo.includes('alice@acme.test') && m.data.includes('Subject: one bad recipient') && /report-type=delivery-status/.test(m.data.toString('latin1')));
    expect(dsn.mailFrom).toBe('');
    const text = dsn.data.toString('latin1');
    expect(text).toMatch(/Content-Type: multipart\/report;[^\r\n]*report-type=delivery-status/i);
    expect(text).toMatch(/Final-Recipient: rfc822;\s*nobody@example\.org/i);
    expect(text).toMatch(/Status: 5\.1\.1/);
    expect(text).not.toMatch(/Final-Recipient: rfc822;\s*bob@example\.org/i);

    const entry = await waitFor('the suppression entry for nobody', () => suppressed(UNKNOWN_AT_RCPT));
    expect(entry.source).toBe('bounce');
    expect(await invalidRecipients(alice)).toBe(before + 1);
    const attemptsBefore = testMx.rcptAttempts.filter((address) => address === UNKNOWN_AT_RCPT).length;
    // A whole message to the suppressed address and a good one: it goes out to the good one only.
    const { smtp } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
    try {
      const sent = await rawTransaction(smtp, {
        mailFrom: 'alice@acme.test',
        rcptTo: [UNKNOWN_AT_RCPT, 'bob@example.org'],
        message: rawMessage('alice@acme.test', 'bob@example.org', 'after the suppression'),
      });
      expect(sent.rcpt[0]).toMatch(/^550 5\.1\.1 .*suppression list/);
      expect(sent.rcpt[1]).toMatch(/^250 /);
      expect(sent.end).toMatch(/^250 /);
    } finally {
      smtp.close();
    }
    const after = await received('the message sent after the suppression', (m) => subjectOf(m) === 'after the suppression');
    expect(after.rcptTo).toEqual(['bob@example.org']);
    // Refused at our door: the MX never hears of it again.
    expect(testMx.rcptAttempts.filter((address) => address === UNKNOWN_AT_RCPT)).toHaveLength(attemptsBefore);
  });
});
