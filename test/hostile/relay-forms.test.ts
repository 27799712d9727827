// The classic open-relay address forms. Without AUTH (and from no IP user's address) nothing is
// relayed: MAIL FROM gets 530 5.7.0 and every RCPT after it 503. Logged in, each form is either
// refused, or delivered to the right-most domain only with the rest kept as the local part:
// the envelope the next hop sees is exactly the address given (a source route is dropped, as
// RFC 5321 §4.1.2 and appendix C say), never rewritten into a route to another domain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawMessage, rawSession, rawTransaction, startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';

const SENDER = 'alice@acme.test';

let e2e: E2eNode;

beforeAll(async () => {
  e2e = await startE2eNode({ config: { policy: { reputation: { throttleScore: 10_000, rejectScore: 20_000 } } } });
  const tenant = await e2e.tenant('acme', ['acme.test']);
  await e2e.user(tenant, SENDER, { autoLock: false });
});

afterAll(async () => {
  await e2e?.stop();
});

const FORMS = {
  percentHack: 'user%other.test@example.org',
  bangPath: 'other.test!user@example.org',
  sourceRoute: '@a.test,@b.test:user@example.org',
  quotedAt: '"user@other.test"@example.org',
  quotedPercent: '"user%other.test"@example.org',
  quotedDots: '"user..other"@example.org',
  addressLiteral: 'user@[127.0.0.1]',
  doubleAt: 'user@other.test@example.org',
  percentInDomain: 'user@other.test%example.org',
} as const;

/** Without a transaction, RCPT gets 503 5.5.1; an address that is not even valid syntax gets 501 5.1.3 first. */
const UNAUTHENTICATED_RCPT: Record<keyof typeof FORMS, RegExp> = {
  percentHack: /^503 5\.5\.1 /,
  bangPath: /^503 5\.5\.1 /,
  sourceRoute: /^503 5\.5\.1 /,
  quotedAt: /^501 5\.1\.3 /,
  quotedPercent: /^503 5\.5\.1 /,
  quotedDots: /^501 5\.1\.3 /,
  addressLiteral: /^503 5\.5\.1 /,
  doubleAt: /^501 5\.1\.3 /,
  percentInDomain: /^501 5\.1\.3 /,
};

describe('without AUTH: never relayed', () => {
  it.each(Object.keys(FORMS) as Array<keyof typeof FORMS>)('%s: MAIL FROM 530 5.7.0, RCPT 503 5.5.1 (or 501 5.1.3 for bad syntax), DATA 503', async (name) => {
    const { smtp } = await rawSession(e2e.node.ports.submission);
    expect(await smtp.command(`MAIL FROM:<${SENDER}>`)).toMatch(/^530 5\.7\.0 Authentication required/);
    expect(await smtp.command(`RCPT TO:<${FORMS[name]}>`)).toMatch(UNAUTHENTICATED_RCPT[name]);
    expect(await smtp.command('DATA')).toMatch(/^503 5\.5\.1 /);
    smtp.close();
  });

  it('with the null sender too: 530 5.7.0', async () => {
    const { smtp } = await rawSession(e2e.node.ports.submission);
    expect(await smtp.command('MAIL FROM:<>')).toMatch(/^530 5\.7\.0 /);
    smtp.close();
  });
});

/** Sends a message to `rcpt` as SENDER; returns the replies and, when queued, the queue id. */
async function sendTo(rcpt: string, subject: string): Promise<{ rcpt: string; end?: string; id?: string }> {
  const { smtp, auth } = await rawSession(e2e.node.ports.submission, SENDER);
  expect(auth).toMatch(/^235 /);
  const result = await rawTransaction(smtp, { mailFrom: SENDER, rcptTo: [rcpt], message: rawMessage(SENDER, 'undisclosed-recipients:;', subject) });
  smtp.close();
  return { rcpt: result.rcpt[0] ?? '', end: result.end, id: result.end ? /queued as (\S+)/.exec(result.end)?.[1] : undefined };
}

/** The envelope recipients the next hop got for the message with `subject`. */
async function deliveredTo(subject: string): Promise<string[]> {
  const message = await waitFor(`"${subject}" at the sink`, async () =>
    (await e2e.sink.messages().catch(() => [])).find((m) => m.data.toString('latin1').includes(`Subject: ${subject}\n`)),
  );
  return message.rcptTo;
}

describe('logged in: refused, or delivered to the right-most domain with the rest as the local part', () => {
  it('percent hack user%other.test@example.org: 250, delivered to example.org as user%other.test@example.org', async () => {
    const sent = await sendTo(FORMS.percentHack, 'percent hack');
    expect(sent.rcpt).toMatch(/^250 2\.1\.5 /);
    expect(await deliveredTo('percent hack')).toEqual(['user%other.test@example.org']);
  });

  it('bang path other.test!user@example.org: 250, delivered to example.org as other.test!user@example.org', async () => {
    const sent = await sendTo(FORMS.bangPath, 'bang path');
    expect(sent.rcpt).toMatch(/^250 2\.1\.5 /);
    expect(await deliveredTo('bang path')).toEqual(['other.test!user@example.org']);
  });

  it('source route @a.test,@b.test:user@example.org: 250, the route dropped, delivered to user@example.org only', async () => {
    const sent = await sendTo(FORMS.sourceRoute, 'source route');
    expect(sent.rcpt).toMatch(/^250 2\.1\.5 /);
    expect(await deliveredTo('source route')).toEqual(['user@example.org']);
  });

  it('quoted local part with a percent "user%other.test"@example.org: 250, delivered to example.org as user%other.test@example.org (the same mailbox, unquoted)', async () => {
    const sent = await sendTo(FORMS.quotedPercent, 'quoted percent');
    expect(sent.rcpt).toMatch(/^250 2\.1\.5 /);
    expect(await deliveredTo('quoted percent')).toEqual(['user%other.test@example.org']);
  });

  it('quoted local part that needs its quotes "user..other"@example.org: 501 5.1.3', async () => {
    expect((await sendTo(FORMS.quotedDots, 'quoted dots')).rcpt).toMatch(/^501 5\.1\.3 /);
  });

  it('quoted local part with an @ "user@other.test"@example.org: 501 5.1.3', async () => {
    expect((await sendTo(FORMS.quotedAt, 'quoted at')).rcpt).toMatch(/^501 5\.1\.3 /);
  });

  it('address literal user@[127.0.0.1]: 553 5.1.3', async () => {
    expect((await sendTo(FORMS.addressLiteral, 'address literal')).rcpt).toMatch(/^553 5\.1\.3 Recipient <user@\[127\.0\.0\.1\]> is not a valid address/);
  });

  it('double @ user@other.test@example.org: 553 5.1.3', async () => {
    expect((await sendTo(FORMS.doubleAt, 'double at')).rcpt).toMatch(/^553 5\.1\.3 /);
  });

  it('percent in the domain user@other.test%example.org: 553 5.1.3', async () => {
    expect((await sendTo(FORMS.percentInDomain, 'percent in domain')).rcpt).toMatch(/^553 5\.1\.3 /);
  });

  it('the next hop got exactly the four accepted messages, each to example.org, none to other.test, a.test or b.test', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // A dump still being written does not parse yet: look again.
    const rcpts = await waitFor('four messages at the sink', async () => {
      const found = (await e2e.sink.messages().catch(() => undefined))?.flatMap((message) => message.rcptTo);
      return found && found.length >= 4 ? found.sort() : undefined;
    });
    // Each exactly once: a recipient the queue kept in another form than the next hop echoes would be delivered again at every retry.
    expect(rcpts).toEqual(['other.test!user@example.org', 'user%other.test@example.org', 'user%other.test@example.org', 'user@example.org']);
    for (const message of (await e2e.node.stores.log.search({})).items) expect(message.status === 'delivered' || message.status === 'refused').toBe(true);
  });
});
