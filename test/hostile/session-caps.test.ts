// Per-address session caps on every SMTP listener, with raw sockets: 50 concurrent sessions from
// one address by default (smtp.maxSessionsPerAddress), the 51st greeted with 421 4.7.0 and
// closed; an address in smtp.sessionCapExemptions is not capped; closing a session frees its
// slot; the bounce listener also has a total cap (smtp.bounceMaxSessions). Loopback lets the
// test connect from several source addresses (127.0.0.1, .2, .3).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startE2eNode, type E2eNode } from '../helpers/e2e-node.js';
import { RudeClient } from './rude-client.js';

const EXEMPT = '127.0.0.2';
const BOUNCE_TOTAL = 60;

let e2e: E2eNode;
const open: RudeClient[] = [];

beforeAll(async () => {
  e2e = await startE2eNode({ config: { smtp: { sessionCapExemptions: [`${EXEMPT}/32`], bounceMaxSessions: BOUNCE_TOTAL } } });
});

afterEach(async () => {
  for (const client of open.splice(0)) client.reset();
  // onClose runs when the server sees the reset: let the slots free up between tests.
  await new Promise((resolve) => setTimeout(resolve, 300));
});

afterAll(async () => {
  await e2e?.stop();
});

type Listener = 'submission' | 'submissions' | 'bounce';

/** Opens a session and returns it with the server's first reply (the greeting, or the refusal). */
async function session(listener: Listener, localAddress = '127.0.0.1'): Promise<{ client: RudeClient; first: string }> {
  const client = await RudeClient.connect(e2e.node.ports[listener], { localAddress });
  open.push(client);
  if (listener === 'submissions') await client.tls();
  const first = await client.until(/^\d{3} [^\r\n]*\r\n/m, 5000);
  return { client, first };
}

async function sessions(listener: Listener, count: number, localAddress = '127.0.0.1'): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, async () => (await session(listener, localAddress)).first));
}

describe.each(['submission', 'submissions', 'bounce'] as const)('session caps on the %s listener', (listener) => {
  it('greets 50 sessions from one address and answers the 51st with 421 4.7.0, then closes it', async () => {
    const greetings = await sessions(listener, 50);
    expect(greetings.filter((greeting) => greeting.startsWith('220 '))).toHaveLength(50);
    const { client, first } = await session(listener);
    expect(first).toMatch(/^421 4\.7\.0 Too many concurrent connections from 127\.0\.0\.1 \(limit 50\); try again later/);
    expect(await client.closedWithin(3000)).toBe(true);
  });

  it('does not cap an exempt address (more than 50 sessions from it, while another address is at its cap)', async () => {
    // The bounce listener's total cap (60 here) still counts everyone.
    const exemptSessions = listener === 'bounce' ? 55 : 60;
    await sessions(listener, listener === 'bounce' ? BOUNCE_TOTAL - exemptSessions : 50);
    const greetings = await sessions(listener, exemptSessions, EXEMPT);
    expect(greetings.every((greeting) => greeting.startsWith('220 '))).toBe(true);
  });

  it('frees a slot when a session closes', async () => {
    const first = await Promise.all(Array.from({ length: 50 }, () => session(listener)));
    expect((await session(listener)).first).toMatch(/^421 4\.7\.0 /);
    first[0]?.client.end();
    first[1]?.client.reset();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await session(listener)).first).toMatch(/^220 /);
    expect((await session(listener)).first).toMatch(/^220 /);
    expect((await session(listener)).first).toMatch(/^421 4\.7\.0 /);
  });
});

describe('the bounce listener total cap', () => {
  it(`refuses session ${BOUNCE_TOTAL + 1} in all with 421 4.7.0, whatever its address`, async () => {
    await sessions('bounce', 50);
    await sessions('bounce', BOUNCE_TOTAL - 50, EXEMPT);
    const { first } = await session('bounce', '127.0.0.3');
    expect(first).toMatch(/^421 4\.7\.0 Too many connections to this server; try again later/);
  });
});
