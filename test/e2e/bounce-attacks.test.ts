// The bounce listener and the submission port as an outsider attacks them, on the single node
// with a real clamd, postfix's smtp-sink as the next hop, and a tenant whose mail is DKIM-signed.
// The relay's own name is inside the tenant's domain (relay.acme.test), so that a notice would be
// signed with the tenant's key if anything but the notice rule kept it from that. Each attack is
// answered as it should be, and each test checks that nothing else changed: suppression list,
// abuse counters, locks, queues, stored bounce files, and what reached the next hop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDkimKey } from '../../core/dkim/keys.js';
import type { OutgoingUser, Tenant } from '../../core/identity.js';
import { counterKeys } from '../../core/policy/keys.js';
import { dsnFor, RawSession, sendBounce, type ReturnedMessage } from '../helpers/bounce-client.js';
import { EICAR, startClamd, type TestDaemon } from '../helpers/clamd.js';
import { headersOf, rawSession, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';
import type { SinkMessage } from '../helpers/smtp-sink.js';

const DAY_MS = 86_400_000;
const PER_RETURN_PATH = 4;
const BATV = /^prvs=(\d)(\d{3})([0-9a-f]{6})=(.+)$/;

let clamd: TestDaemon;
let e2e: E2eNode;
let tenant: Tenant;
let users: Record<'alice' | 'rita' | 'nina' | 'olga', OutgoingUser>;

beforeAll(async () => {
  clamd = await startClamd();
  e2e = await startE2eNode({
    config: {
      hostname: 'relay.acme.test',
      scanning: { clamd: `127.0.0.1:${clamd.port}` },
      bounces: { perReturnPathPerHour: PER_RETURN_PATH, maxRefusedRcpts: 3 },
      // Every client here is 127.0.0.1: its reputation must not throttle the senders under test.
      policy: { reputation: { throttleScore: 1000, rejectScore: 2000 } },
    },
  });
  // No bounceValidation given: the built-in default (on) is what is tested.
  tenant = await e2e.tenant('acme', ['acme.test']);
  await addDkimKey(e2e.node.stores.dkimKeys, { domain: 'acme.test', selector: 'main', now: Date.now() });
  users = {
    alice: await e2e.user(tenant, 'alice@acme.test'),
    rita: await e2e.user(tenant, 'rita@acme.test'),
    nina: await e2e.user(tenant, 'nina@acme.test'),
    // Locked at the fifth invalid recipient: one bounce naming many addresses must not get there.
    olga: await e2e.user(tenant, 'olga@acme.test', { invalidRecipientLimit: 5, autoLock: true }),
  };
}, 60_000);

afterAll(async () => {
  await e2e?.stop();
  await clamd?.stop();
});

const stores = () => e2e.node.stores;
const subjectOf = (message: SinkMessage): string | undefined => headersOf(message.data).get('subject')?.[0];
const atSink = (what: string, match: (message: SinkMessage) => boolean): Promise<SinkMessage> =>
  waitFor(what, async () => (await e2e.sink.messages().catch(() => [])).find(match));

/** Sends a message as `from` to `to` and returns it as the next hop got it (tagged return path). */
async function delivered(from: string, to: string, subject: string): Promise<{ id: string; original: ReturnedMessage }> {
  const id = await submit(e2e.node.ports.submission, { from, to: [to], subject });
  const message = await atSink(`"${subject}" at the sink`, (m) => subjectOf(m) === subject);
  return { id, original: { mailFrom: message.mailFrom, data: message.data } };
}

/** Everything an outsider's bounce must not touch, for one user and one address. */
async function state(user: OutgoingUser, address: string) {
  return {
    suppressed: (await stores().suppression.list(tenant.id, Date.now())).map((entry) => entry.address).sort(),
    invalidRecipients: await stores().counters.total(counterKeys.invalidRecipients(user.id), DAY_MS),
    spamVerdicts: await stores().counters.total(counterKeys.spamVerdicts(user.id), DAY_MS),
    lock: (await stores().lockStore.read(user.id)) ?? null,
    address: (await stores().suppression.find(tenant.id, address, Date.now())) ?? null,
  };
}

/** The bounce stage has nothing left to do: no job queued or in flight, no bounce file stored. */
const bounceStageIdle = (): Promise<true> =>
  waitFor('the bounce stage to be idle', async () => {
    const depth = await stores().queue.depth('bounce');
    const files = await stores().blobs.list('bounces/');
    return depth.visible + depth.inFlight + depth.delayed === 0 && files.length === 0 ? true : undefined;
  });

async function metric(line: RegExp): Promise<string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${e2e.node.ports.http}/metrics`, { headers: { authorization: `Bearer ${e2e.node.operatorToken.token}` } })).text();
  return text.split('\n').find((row) => line.test(row));
}

describe('bounce validation is on by default', () => {
  it('tags the return path and refuses an untagged bounce at RCPT with 550 5.7.1; nothing changes', async () => {
    const { original } = await delivered('alice@acme.test', 'erin@example.org', 'tagged by default');
    expect(original.mailFrom).toMatch(BATV);
    const before = await state(users.alice, 'erin@example.org');
    const answers = await sendBounce(e2e.node.ports.bounce, '', 'alice@acme.test', dsnFor(original, ['erin@example.org']));
    expect(answers.rcpt).toMatch(/^550 5\.7\.1 .*carries no tag/);
    await bounceStageIdle();
    expect(await state(users.alice, 'erin@example.org')).toEqual(before);
  });
});

describe('forged bounces', () => {
  it('forwards a bounce "From: ceo@acme.test" only inside its own notice, never signed with the tenant key', async () => {
    const { id, original } = await delivered('alice@acme.test', 'bob@example.org', 'to be bounced by a forger');
    // The tenant's own mail is signed d=acme.test: a signature on the notice would be the tenant's.
    expect(headersOf(original.data).get('dkim-signature')?.[0]).toMatch(/d=acme\.test/);

    const forged = dsnFor(original, ['bob@example.org'], { from: 'Chief Executive <ceo@acme.test>', text: 'Please wire the money today. -- the CEO' });
    const answers = await sendBounce(e2e.node.ports.bounce, '', original.mailFrom, forged);
    expect(answers.data).toMatch(/^250 /);

    const notice = await atSink('the forwarded bounce', (m) => m.rcptTo.includes('alice@acme.test') && m.data.toString('latin1').includes(`X-Outpost-Bounce-For: ${id}`));
    const headers = headersOf(notice.data);
    expect(notice.mailFrom).toBe('');
    expect(headers.get('from')).toEqual(['Mail Delivery System <postmaster@relay.acme.test>']);
    expect(headers.has('dkim-signature')).toBe(false);
    expect(headers.get('content-type')?.[0]).toMatch(/^multipart\/mixed;/);
    const text = notice.data.toString('latin1');
    // The forged report is there, as an attachment: its From is inside message/rfc822, not ours.
    expect(text).toMatch(/Content-Type: message\/rfc822\n(?:[^\n]+\n)*\nFrom: Chief Executive <ceo@acme\.test>\n/);
    // Nothing at the next hop carries the forged From as its own.
    for (const message of await e2e.sink.messages()) expect(headersOf(message.data).get('from') ?? []).not.toContain('Chief Executive <ceo@acme.test>');
    const log = await stores().log.get(`${answers.data?.match(/queued as (\S+)/)?.[1] ?? ''}-fwd`);
    expect(log?.events.find((event) => event.event === 'dkim-unsigned')?.detail.reason).toMatch(/never signed with a tenant key/);

    // The bounce itself is acted on (bob is a recipient of that message), and its file is gone.
    expect(await waitFor('bob on the suppression list', async () => (await stores().suppression.find(tenant.id, 'bob@example.org', Date.now())) ?? undefined)).toMatchObject({ source: 'bounce' });
    await bounceStageIdle();
  });

  it('drops a bounce carrying EICAR: counted in a metric, charged to nobody, nothing changed', async () => {
    const { id, original } = await delivered('alice@acme.test', 'carl@example.org', 'to be bounced with a virus');
    const before = await state(users.alice, 'carl@example.org');
    const infected = dsnFor(original, ['carl@example.org'], { text: `Undeliverable. Details: ${EICAR}` });
    // Accepted at the door (the listener does not scan); the bounce stage scans and drops it.
    expect((await sendBounce(e2e.node.ports.bounce, '', original.mailFrom, infected)).data).toMatch(/^250 /);
    await waitFor('the dropped-bounce metric', () => metric(/^outpost_bounces_dropped_total\{reason="virus"\} 1$/));
    await bounceStageIdle();

    expect(await state(users.alice, 'carl@example.org')).toEqual(before);
    expect(before.lock).toBeNull();
    expect((await stores().log.get(id))?.events.some((event) => event.event === 'bounce-received')).toBe(false);
    // Not forwarded either: a later message reaches the sink, and no notice about this one did.
    await delivered('alice@acme.test', 'erin@example.org', 'after the virus bounce');
    const forwards = (await e2e.sink.messages()).filter((m) => m.data.toString('latin1').includes(`X-Outpost-Bounce-For: ${id}`));
    expect(forwards).toEqual([]);
  });
});

describe('suppression poisoning', () => {
  it('suppresses and counts only the recipient of the original message among the 57 a bounce names', async () => {
    const { id, original } = await delivered('olga@acme.test', 'kim@example.org', 'olga writes to kim');
    const strangers = Array.from({ length: 56 }, (_, i) => `customer${i}@bigcustomer.example`);
    const before = await state(users.olga, 'customer0@bigcustomer.example');
    const answers = await sendBounce(e2e.node.ports.bounce, '', original.mailFrom, dsnFor(original, [...strangers, 'kim@example.org']));
    expect(answers.data).toMatch(/^250 /);
    const event = await waitFor('the bounce in the message log', async () => (await stores().log.get(id))?.events.find((e) => e.event === 'bounce-received'));
    await bounceStageIdle();
    // Only kim (a recipient of olga's message, listed last, within bounces.maxRecipients) is acted on.
    expect(event.detail).toMatchObject({ recipients: [{ address: 'kim@example.org', hard: true }], ignoredRecipients: 56 });
    const after = await state(users.olga, 'customer0@bigcustomer.example');
    expect(after.suppressed).toEqual([...before.suppressed, 'kim@example.org'].sort());
    expect(after.invalidRecipients).toBe(before.invalidRecipients + 1);
    expect(after.lock).toBeNull();
    expect(after.address).toBeNull();
  });

  it('changes nothing for a validly tagged bounce that names no message of ours', async () => {
    const { id, original } = await delivered('olga@acme.test', 'lena@example.org', 'olga writes to lena');
    const strangers = ['ceo@bigcustomer.example', 'sales@bigcustomer.example'];
    // No returned headers, and recipients olga never wrote to: nothing to attribute it to.
    const unrelated = dsnFor({ mailFrom: original.mailFrom, data: Buffer.from('X-Nothing: here\r\n\r\n') }, strangers);
    const before = await state(users.olga, 'ceo@bigcustomer.example');
    const answers = await sendBounce(e2e.node.ports.bounce, '', original.mailFrom, unrelated);
    expect(answers.data).toMatch(/^250 /);
    await bounceStageIdle();
    expect(await state(users.olga, 'ceo@bigcustomer.example')).toEqual(before);
    // Not recorded against olga's last message, and so not forwarded to her either.
    expect((await stores().log.get(id))?.events.map((e) => e.event)).not.toContain('bounce-received');
    const bounceId = /queued as (\S+)/.exec(answers.data ?? '')?.[1];
    expect(bounceId).toBeDefined();
    expect(await stores().log.get(`${bounceId}-fwd`)).toBeUndefined();
  });
});

describe('tag guessing', () => {
  it('answers an unknown key and a bad hash alike, and closes the connection at the third refused RCPT', async () => {
    const { original } = await delivered('alice@acme.test', 'gwen@example.org', 'a tag to guess from');
    const match = BATV.exec(original.mailFrom);
    if (!match) throw new Error(`untagged return path ${original.mailFrom}`);
    const [, k = '0', ddd = '', hash = '', address = ''] = match;
    const badHash = `prvs=${k}${ddd}${hash[0] === 'a' ? 'b' : 'a'}${hash.slice(1)}=${address}`;
    const unknownKey = `prvs=${(Number(k) + 5) % 10}${ddd}${hash}=${address}`;
    const before = await state(users.alice, 'gwen@example.org');

    const { session } = await RawSession.open(e2e.node.ports.bounce);
    try {
      await session.command('EHLO guesser.example');
      expect(await session.command('MAIL FROM:<>')).toMatch(/^250 /);
      const first = await session.command(`RCPT TO:<${badHash}>`);
      const second = await session.command(`RCPT TO:<${unknownKey}>`);
      expect(first).toMatch(/^550 5\.7\.1 /);
      expect(second).toBe(first.replace(badHash, unknownKey));
      expect(await session.command(`RCPT TO:<prvs=${k}${ddd}000000=${address}>`)).toMatch(/^421 4\.7\.0 /);
      expect(await session.closed()).toBe(true);
    } finally {
      session.close();
    }
    // A fresh connection is served again, and the real tag still works.
    expect((await sendBounce(e2e.node.ports.bounce, '', original.mailFrom)).rcpt).toMatch(/^250 /);
    expect(await state(users.alice, 'gwen@example.org')).toEqual(before);
  });
});

describe('rate limits of the bounce listener', () => {
  it(`takes ${PER_RETURN_PATH} bounces an hour for one return path, then answers 450 4.7.1`, async () => {
    const { original } = await delivered('rita@acme.test', 'dave@example.org', 'rita writes once');
    const before = await state(users.rita, 'dave@example.org');
    for (let i = 0; i < PER_RETURN_PATH; i += 1) expect((await sendBounce(e2e.node.ports.bounce, '', original.mailFrom)).rcpt).toMatch(/^250 /);
    const refused = await sendBounce(e2e.node.ports.bounce, '', original.mailFrom, dsnFor(original, ['dave@example.org']));
    expect(refused.rcpt).toMatch(/^450 4\.7\.1 Too many bounces for <prvs=.*retry after \d\d:\d\d UTC/);
    expect(refused.data).toBeUndefined();
    await bounceStageIdle();
    expect(await state(users.rita, 'dave@example.org')).toEqual(before);
  });
});

describe('NUL characters', () => {
  it('refuses NUL in DATA on the bounce listener (the \\r\\n\\0.\\r\\n smuggling variant) with 550 5.6.0 and stores nothing', async () => {
    const { original } = await delivered('nina@acme.test', 'hank@example.org', 'nina writes once');
    const before = await state(users.nina, 'hank@example.org');
    const { session } = await RawSession.open(e2e.node.ports.bounce);
    try {
      await session.command('EHLO mx.example.org');
      await session.command('MAIL FROM:<>');
      expect(await session.command(`RCPT TO:<${original.mailFrom}>`)).toMatch(/^250 /);
      expect(await session.command('DATA')).toMatch(/^354 /);
      const smuggled = `MAIL FROM:<>\r\nRCPT TO:<${original.mailFrom}>\r\nDATA\r\n${dsnFor(original, ['hank@example.org'])}`;
      session.write(`${dsnFor(original, ['hank@example.org'])}\r\n\0.\r\n${smuggled}\r\n.\r\n`);
      expect(await session.reply()).toMatch(/^550 5\.6\.0 .*NUL/);
      // One session still: no second transaction was smuggled in.
      expect(await session.command('NOOP')).toMatch(/^250 /);
    } finally {
      session.close();
    }
    await bounceStageIdle();
    expect(await state(users.nina, 'hank@example.org')).toEqual(before);
  });

  it('refuses NUL in a command on the bounce listener with 550 5.6.0 and does not run it', async () => {
    const { session } = await RawSession.open(e2e.node.ports.bounce);
    try {
      await session.command('EHLO mx.example.org');
      expect(await session.command(Buffer.from('MAIL FROM:<>\0'))).toMatch(/^550 5\.6\.0 /);
      // MAIL was not run: RCPT has no transaction to join.
      expect(await session.command('RCPT TO:<nina@acme.test>')).toMatch(/^503 /);
    } finally {
      session.close();
    }
  });

  it('refuses NUL in DATA on the submission port with 550 5.6.0; the smuggled message never reaches the next hop', async () => {
    const { smtp, auth } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
    try {
      expect(auth).toMatch(/^235 /);
      expect(await smtp.command('MAIL FROM:<alice@acme.test>')).toMatch(/^250 /);
      expect(await smtp.command('RCPT TO:<ivy@example.org>')).toMatch(/^250 /);
      expect(await smtp.command('DATA')).toMatch(/^354 /);
      smtp.write(
        'From: alice@acme.test\r\nTo: ivy@example.org\r\nSubject: carrier\r\n\r\nhello\r\n\0.\r\n' +
          'MAIL FROM:<alice@acme.test>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nFrom: ceo@acme.test\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\n',
      );
      expect(await smtp.reply()).toMatch(/^550 5\.6\.0 .*NUL/);
      expect(await smtp.command('NOOP')).toMatch(/^250 /);
    } finally {
      smtp.close();
    }
    // A message sent afterwards arrives; neither the carrier nor the smuggled one ever does.
    await delivered('alice@acme.test', 'ivy@example.org', 'after the smuggling attempt');
    const texts = (await e2e.sink.messages()).map((m) => ({ rcpt: m.rcptTo, text: m.data.toString('latin1') }));
    expect(texts.filter((m) => m.rcpt.includes('victim@example.org') || /Subject: (smuggled|carrier)/.test(m.text) || m.text.includes('\0'))).toEqual([]);
  });

  it('refuses NUL in a command on the submission port with 550 5.6.0 and does not run it', async () => {
    const { smtp, auth } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
    try {
      expect(auth).toMatch(/^235 /);
      smtp.write(Buffer.from('MAIL FROM:<alice@acme.test>\0 SIZE=100\r\n'));
      expect(await smtp.reply()).toMatch(/^550 5\.6\.0 /);
      expect(await smtp.command('RCPT TO:<ivy@example.org>')).toMatch(/^503 /);
    } finally {
      smtp.close();
    }
  });
});

describe('the per-source-IP rate of the bounce listener', () => {
  let small: E2eNode;

  beforeAll(async () => {
    small = await startE2eNode({ config: { bounces: { perClientIpPerHour: 3 } } });
  });

  afterAll(async () => {
    await small?.stop();
  });

  it('answers 450 4.7.1 to the RCPT after bounces.perClientIpPerHour from one address, refused ones counted too', async () => {
    const port = small.node.ports.bounce;
    // Refused (no tenant serves the domain), yet each one counts against the source address.
    for (let i = 0; i < 3; i += 1) expect((await sendBounce(port, '', `prvs=0000000000=x${i}@nowhere.example`)).rcpt).toMatch(/^550 5\.7\.1 /);
    const limited = await sendBounce(port, '', 'prvs=0000000000=x3@nowhere.example');
    expect(limited.rcpt).toMatch(/^450 4\.7\.1 Too many bounces from 127\.0\.0\.1 \(limit 3 an hour\); retry after \d\d:\d\d UTC/);
    expect((await small.node.stores.queue.depth('bounce')).visible).toBe(0);
  });
});
