// One user's abuse is charged to that user, never to the others behind the same address. With the
// default reputation settings (one abuse verdict reaches the throttle score) and a real clamd:
// an authenticated user sends EICAR and is locked, and another user of another tenant, connecting
// from the same address, still connects and sends. An IP user, whose identity is the address,
// does charge its address: after its virus, that address is throttled at connect (421 4.7.0).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutgoingUser } from '../../core/identity.js';
import { EICAR, startClamd, type TestDaemon } from '../helpers/clamd.js';
import { messageWithStatus, rawMessage, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { RudeClient } from '../hostile/rude-client.js';

const IP_USER_ADDRESS = '127.0.0.5';

let clamd: TestDaemon;
let e2e: E2eNode;
let alice: OutgoingUser;

beforeAll(async () => {
  clamd = await startClamd();
  // Default policy.reputation: throttleScore 10, abuseWeight 10.
  e2e = await startE2eNode({ config: { scanning: { clamd: `127.0.0.1:${clamd.port}` } } });
  const acme = await e2e.tenant('acme', ['acme.test']);
  const globex = await e2e.tenant('globex', ['globex.test']);
  alice = await e2e.user(acme, 'alice@acme.test', { autoLock: true });
  await e2e.user(globex, 'bob@globex.test');
  await e2e.user(acme, `${IP_USER_ADDRESS}/32`);
});

afterAll(async () => {
  await e2e?.stop();
  await clamd?.stop();
});

/** The first reply a client connecting from `localAddress` gets on the submission port. */
async function greetingFrom(localAddress: string): Promise<string> {
  const client = await RudeClient.connect(e2e.node.ports.submission, { localAddress });
  const text = await client.until(/^\d{3} [^\r\n]*\r\n/m);
  client.reset();
  return text.trim();
}

describe('abuse verdicts and the source address', () => {
  it("one authenticated user's virus locks that user only: another tenant's user from the same address connects and sends", async () => {
    const infected = await submit(e2e.node.ports.submission, {
      from: 'alice@acme.test',
      to: ['carol@example.org'],
      subject: 'infected',
      attachments: [{ filename: 'eicar.com', content: EICAR }],
    });
    await messageWithStatus(e2e.node, infected, 'quarantined');
    expect((await e2e.node.stores.lockStore.read(alice.id))?.reasons?.map((reason) => reason.name)).toContain('VIRUS_FOUND');

    expect(await greetingFrom('127.0.0.1')).toMatch(/^220 /);
    const clean = await submit(e2e.node.ports.submission, { from: 'bob@globex.test', to: ['dave@example.org'], subject: 'after the virus of another user' });
    await messageWithStatus(e2e.node, clean, 'delivered');
  });

  it("an IP user's virus counts against its address: the next connection from it gets 421 4.7.0, other addresses do not", async () => {
    const client = await RudeClient.connect(e2e.node.ports.submission, { localAddress: IP_USER_ADDRESS });
    await client.until(/^220 /m);
    client.write('EHLO mail.acme.test\r\n');
    await client.until(/^250 /m);
    client.write('MAIL FROM:<server@acme.test>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n');
    await client.until(/^354 /m);
    client.write(rawMessage('server@acme.test', 'carol@example.org', 'from the smarthost', [], `Payload: ${EICAR}`));
    const reply = await client.until(/queued as \S+/m);
    const id = /queued as (\S+)/.exec(reply)?.[1] ?? '';
    client.reset();
    await messageWithStatus(e2e.node, id, 'quarantined');

    expect(await greetingFrom(IP_USER_ADDRESS)).toMatch(/^421 4\.7\.0 Too many failed logins or refused mails from 127\.0\.0\.5/);
    expect(await greetingFrom('127.0.0.1')).toMatch(/^220 /);
  });
});
