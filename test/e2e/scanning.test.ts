// Content scanning end to end on the single node: a client submits, the scan stage asks a real
// clamd (with the EICAR signature database the test makes) and the built-in spam rules (GTUBE),
// and postfix's smtp-sink stands for the smarthost. An infected message never reaches it, the
// sender gets the "held" report instead, and spam verdicts lock a user with automatic lock once
// the configured number of them is reached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutgoingUser } from '../../core/identity.js';
import { EICAR, startClamd, type TestDaemon } from '../helpers/clamd.js';
import { messageWithStatus, startE2eNode, submit, tryEnvelope, type E2eNode } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';
import type { SinkMessage, SmtpSink } from '../helpers/smtp-sink.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const SPAM_LOCK_AFTER = 2;

let clamd: TestDaemon;
let sink: SmtpSink;
let e2e: E2eNode;
let users: Record<'virus' | 'spammer' | 'tolerated', OutgoingUser>;

beforeAll(async () => {
  clamd = await startClamd();
  e2e = await startE2eNode({
    config: {
      scanning: { clamd: `127.0.0.1:${clamd.port}` },
      // Every client here is 127.0.0.1: its reputation must not throttle the senders under test.
      policy: { spamVerdicts: { lockAfter: SPAM_LOCK_AFTER, windowMinutes: 60 }, reputation: { throttleScore: 1000, rejectScore: 2000 } },
    },
  });
  sink = e2e.sink;
  const tenant = await e2e.tenant('acme', ['acme.test']);
  users = {
    virus: await e2e.user(tenant, 'alice@acme.test'),
    spammer: await e2e.user(tenant, 'sam@acme.test', { autoLock: true, blockSpam: true }),
    tolerated: await e2e.user(tenant, 'tom@acme.test', { autoLock: false, blockSpam: true }),
  };
});

afterAll(async () => {
  await e2e?.stop();
  await clamd?.stop();
});

const to = (message: SinkMessage, address: string): boolean => message.rcptTo.includes(address);
const subjectOf = (message: SinkMessage): string | undefined => /^Subject: (.*)$/m.exec(message.data.toString('utf8'))?.[1];
const lockOf = (user: OutgoingUser) => e2e.node.stores.lockStore.read(user.id);

describe('scanning on the single node', () => {
  it('starts with clamd as its virus scanner and announces the built-in spam rules', () => {
    expect(e2e.node.warnings.some((warning) => /built-in rules/.test(warning))).toBe(true);
    expect(e2e.node.warnings.some((warning) => /no virus scanner/.test(warning))).toBe(false);
  });

  it('delivers a clean message to the smarthost', async () => {
    const id = await submit(e2e.node.ports.submission, { from: 'alice@acme.test', to: ['bob@example.org'], subject: 'clean report' });
    const delivered = await messageWithStatus(e2e.node, id, 'delivered');
    expect(delivered.events.find((e) => e.event === 'scanned')?.detail).toMatchObject({ kind: 'clean', spam: false });
    const messages = await sink.waitForMessages(1);
    expect(messages.some((m) => to(m, 'bob@example.org') && subjectOf(m) === 'clean report')).toBe(true);
  });

  it('quarantines an infected message: it never reaches the sink, the sender gets the report, the user is locked', async () => {
    const id = await submit(e2e.node.ports.submission, {
      from: 'alice@acme.test',
      to: ['bob@example.org'],
      subject: 'invoice attached',
      text: 'Please find the invoice attached.',
      attachments: [{ filename: 'invoice.com', content: EICAR }],
    });
    const held = await messageWithStatus(e2e.node, id, 'quarantined');
    const quarantined = held.events.find((e) => e.event === 'quarantined');
    expect(quarantined?.detail).toMatchObject({ kind: 'virus', reasons: expect.arrayContaining(['VIRUS_FOUND']) });
    expect(JSON.stringify(quarantined?.detail.symbols)).toMatch(/Outpost\.Test\.EICAR/);
    expect((await e2e.node.stores.quarantine.get(id))?.kind).toBe('virus');

    // The report goes to the envelope sender with the null sender; it names the signature and carries no virus.
    const report = await waitFor('the held report at the sink', async () => {
      // A dump still being written does not parse yet: look again.
      const found = (await sink.messages().catch(() => [])).find((m) => to(m, 'alice@acme.test') && m.data.toString('utf8').includes(id));
      return found;
    });
    expect(report.mailFrom).toBe('');
    const reportText = report.data.toString('utf8');
    expect(subjectOf(report)).toBe('Message held: not delivered');
    expect(reportText).toContain('Outpost.Test.EICAR');
    expect(reportText).toContain('invoice attached');
    expect(reportText).not.toContain(EICAR);
    expect(reportText).not.toContain(Buffer.from(EICAR).toString('base64').slice(0, 40));

    // Nothing of the infected message reached the sink, now or a little later.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const all = await sink.waitForMessages(2);
    expect(all.filter((m) => subjectOf(m) === 'invoice attached')).toEqual([]);
    expect(all.some((m) => m.data.toString('utf8').includes(EICAR) || m.data.toString('utf8').includes(Buffer.from(EICAR).toString('base64').slice(0, 40)))).toBe(false);

    // A virus is conclusive: the sender (autoLock by default) is locked at once, naming it.
    const lock = await waitFor('the virus lock', async () => ((await lockOf(users.virus))?.locked ? lockOf(users.virus) : undefined));
    expect(lock?.reasons.map((r) => r.name)).toContain('VIRUS_FOUND');
    const next = await tryEnvelope(e2e.node.ports.submission, 'alice@acme.test', ['bob@example.org']);
    expect(next.mail).toMatch(/^550 5\.7\.1 .*locked \(.*VIRUS_FOUND/);
  });

  it(`locks a user with automatic lock after ${SPAM_LOCK_AFTER} spam verdicts, not at the first`, async () => {
    const first = await submit(e2e.node.ports.submission, { from: 'sam@acme.test', to: ['bob@example.org'], subject: 'offer one', text: `Cheap offer\n${GTUBE}\n` });
    const firstHeld = await messageWithStatus(e2e.node, first, 'quarantined');
    expect(firstHeld.events.find((e) => e.event === 'quarantined')?.detail).toMatchObject({ kind: 'spam' });
    // One verdict is below the threshold: still unlocked and still allowed to send.
    expect((await lockOf(users.spammer))?.locked ?? false).toBe(false);
    expect((await tryEnvelope(e2e.node.ports.submission, 'sam@acme.test', ['bob@example.org'])).rcpts[0]).toMatch(/^250/);

    const second = await submit(e2e.node.ports.submission, { from: 'sam@acme.test', to: ['bob@example.org'], subject: 'offer two', text: `Cheaper offer\n${GTUBE}\n` });
    await messageWithStatus(e2e.node, second, 'quarantined');
    const lock = await waitFor('the spam lock', async () => ((await lockOf(users.spammer))?.locked ? lockOf(users.spammer) : undefined));
    expect(lock?.permanent).toBe(false);
    expect(lock?.reasons[0]).toMatchObject({ name: 'SPAM_VERDICTS', evidence: { verdicts: SPAM_LOCK_AFTER, lockAfter: SPAM_LOCK_AFTER, windowMinutes: 60 } });
    expect(lock?.reasons.map((r) => r.name)).toContain('GTUBE');

    const refused = await tryEnvelope(e2e.node.ports.submission, 'sam@acme.test', ['bob@example.org']);
    expect(refused.mail).toMatch(/^550 5\.7\.1 .*locked \(SPAM_VERDICTS/);
    // Neither spam message reached the smarthost; both senders' reports did.
    await waitFor('both reports to sam', async () => {
      const reports = (await sink.messages().catch(() => [])).filter((m) => to(m, 'sam@acme.test'));
      return reports.length >= 2 ? reports : undefined;
    });
    const all = await sink.messages();
    expect(all.filter((m) => /^offer /.test(subjectOf(m) ?? ''))).toEqual([]);
    expect(all.filter((m) => to(m, 'sam@acme.test') && subjectOf(m) === 'Message held: not delivered')).toHaveLength(2);
  });

  it('does not lock a user whose automatic lock is off, however many spam verdicts', async () => {
    for (let i = 1; i <= SPAM_LOCK_AFTER + 1; i++) {
      const id = await submit(e2e.node.ports.submission, { from: 'tom@acme.test', to: ['bob@example.org'], subject: `tolerated ${i}`, text: `Offer\n${GTUBE}\n` });
      await messageWithStatus(e2e.node, id, 'quarantined');
    }
    expect((await lockOf(users.tolerated))?.locked ?? false).toBe(false);
    expect((await tryEnvelope(e2e.node.ports.submission, 'tom@acme.test', ['bob@example.org'])).mail).toMatch(/^250/);
  });
});
