// A lock stops the sender's mail already queued, proven on a running single node: messages of a
// user wait in delayed retry (the smarthost is down), the user is locked (by the API, by the
// automatic lock after a spam verdict), and when their retry comes up they are held, not
// delivered; other users' mail goes on. Then each way out: unlock with the CLI and with the API
// (delivered exactly once), a timed lock that ends (the node's hold check, with the injected
// clock), `queue purge` (deleted, never delivered), and a hold by hand without a lock (`queue
// hold` catches new mail at the scan stage; `queue release` lets it go).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tenant } from '../../core/identity.js';
import { messageWithStatus, startE2eNode, submit, type E2eNode } from '../helpers/e2e-node.js';
import { freePort, waitFor } from '../helpers/net.js';
import { outpost } from '../helpers/relay-process.js';
import { startSmtpSink, type SinkMessage, type SmtpSink } from '../helpers/smtp-sink.js';
import { GTUBE } from '../../core/scan/engines.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';

const MINUTE = 60_000;

let e2e: E2eNode;
let acme: Tenant;
let relayPort: number;
let sink: SmtpSink | undefined;
const ids: Record<string, string[]> = {};

const cli = (args: string[]) => outpost({ ...process.env, OUTPOST_DATA_DIR: e2e.dataDir }, args);

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${e2e.node.ports.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${e2e.node.operatorToken.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function userId(identity: string): Promise<string> {
  const user = await e2e.node.stores.configStore.findUserByLogin(identity);
  if (!user) throw new Error(`no user ${identity}`);
  return user.id;
}

/** Sends `count` messages as `identity`, subjects "<local part> N". */
async function send(identity: string, count: number): Promise<string[]> {
  const local = identity.split('@')[0] ?? identity;
  const sent: string[] = [];
  for (let n = 1; n <= count; n += 1) {
    sent.push(await submit(e2e.node.ports.submission, { from: identity, to: 'someone@example.org', subject: `${local} ${n}` }));
  }
  (ids[local] ??= []).push(...sent);
  return sent;
}

/** Mail the users sent that reached the smarthost (notices to them, with the null sender, left out). */
async function userMailAtSink(): Promise<SinkMessage[]> {
  return sink ? (await sink.messages()).filter((message) => message.mailFrom !== '') : [];
}

const subjectOf = (message: SinkMessage): string => /^Subject: (.*)$/m.exec(message.data.toString('utf8'))?.[1] ?? '';

async function sinkSubjects(): Promise<string[]> {
  return (await userMailAtSink()).map(subjectOf).sort();
}

/** A few retry rounds (1 s apart here), long enough for a message that is not held to go out. */
const retryRounds = () => new Promise((resolve) => setTimeout(resolve, 2500));

beforeAll(async () => {
  // The smarthost is down until the test starts it on this port: mail waits in delayed retry.
  relayPort = await freePort();
  e2e = await startE2eNode({
    relayHost: `127.0.0.1:${relayPort}`,
    config: {
      delivery: { retrySchedule: Array.from({ length: 120 }, () => 1) },
      queue: { holdCheckSeconds: 1 },
      policy: {
        // The spam verdict below would otherwise throttle 127.0.0.1 for the submissions after it.
        reputation: { throttleScore: 10_000, rejectScore: 20_000 },
        spamVerdicts: { lockAfter: 1 },
      },
    },
  });
  acme = await e2e.tenant('acme', ['acme.test']);
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) await e2e.user(acme, `${name}@acme.test`);
}, 60_000);

afterAll(async () => {
  await sink?.stop();
  await e2e?.stop();
});

describe('a lock holds the mail its user already queued', () => {
  it('holds queued mail of locked users when its retry comes up, and delivers the mail of others', async () => {
    for (const [identity, count] of [['alice@acme.test', 2], ['bob@acme.test', 1], ['carol@acme.test', 1], ['dave@acme.test', 2], ['erin@acme.test', 2]] as const) {
      await send(identity, count);
    }
    for (const id of Object.values(ids).flat()) await messageWithStatus(e2e.node, id, 'deferred');

    // Locked by hand through the API: alice and dave for good, carol for 5 minutes.
    expect((await api('POST', `/v1/tenants/${acme.id}/users/${await userId('alice@acme.test')}/lock`, { reason: 'compromised' })).status).toBe(200);
    expect((await api('POST', `/v1/tenants/${acme.id}/users/${await userId('dave@acme.test')}/lock`, { reason: 'spam run' })).status).toBe(200);
    expect((await api('POST', `/v1/tenants/${acme.id}/users/${await userId('carol@acme.test')}/lock`, { reason: 'cool down', minutes: 5 })).status).toBe(200);
    // Locked automatically: erin sends spam (one verdict locks here).
    const spam = await submit(e2e.node.ports.submission, { from: 'erin@acme.test', to: 'someone@example.org', subject: 'spam', text: `Buy now ${GTUBE}` });
    await messageWithStatus(e2e.node, spam, 'quarantined');
    expect((await e2e.node.stores.lockStore.read(await userId('erin@acme.test')))?.locked).toBe(true);

    for (const name of ['alice', 'carol', 'dave', 'erin']) {
      for (const id of ids[name] ?? []) {
        const held = await messageWithStatus(e2e.node, id, 'held-locked');
        expect(held.events.at(-1)).toMatchObject({ event: 'held-locked', detail: { stage: 'deliver' } });
      }
    }

    sink = await startSmtpSink({ port: relayPort });
    await messageWithStatus(e2e.node, ids.bob?.[0] ?? '', 'delivered');
    await retryRounds();
    expect(await sinkSubjects()).toEqual(['bob 1']);
    // The report about erin's quarantined spam is the relay's own notice: a locked user is still told.
    await waitFor('the report to erin at the sink', async () => ((await sink?.messages()) ?? []).some((message) => message.mailFrom === '' && message.rcptTo.includes('erin@acme.test')));
    expect((await e2e.node.stores.holdStore.list({ userId: await userId('erin@acme.test') })).map((held) => held.messageId)).not.toContain(`${spam}-held`);
    for (const id of [...(ids.alice ?? []), ...(ids.dave ?? [])]) expect((await e2e.node.stores.log.get(id))?.message.status).toBe('held-locked');

    const status = await cli(['queue', 'status']);
    // The 7 messages of the locked users; not the relay's report to erin.
    expect(status).toMatch(/held: 7 messages/);
    expect(status).toMatch(/alice@acme\.test\s+acme\s+locked\s+2\s/);
    const metrics = await (await fetch(`http://127.0.0.1:${e2e.node.ports.http}/metrics`, { headers: { authorization: `Bearer ${e2e.node.operatorToken.token}` } })).text();
    expect(metrics).toMatch(/^outpost_queue_held\{reason="locked"\} 7$/m);
    expect(metrics).toMatch(/^outpost_queue_held_overdue\{reason="locked"\} 0$/m);
  });

  it('delivers the held mail exactly once when the user is unlocked with the CLI', async () => {
    expect(await cli(['unlock', '--tenant', 'acme', 'alice@acme.test', '--reason', 'password changed'])).toMatch(/unlocked/);
    for (const id of ids.alice ?? []) {
      const delivered = await messageWithStatus(e2e.node, id, 'delivered');
      expect(delivered.events.map((event) => event.event)).toContain('hold-released');
    }
    await retryRounds();
    expect(await sinkSubjects()).toEqual(['alice 1', 'alice 2', 'bob 1']);
  });

  it('refuses to release mail while the lock stands, and delivers it once the API unlocks', async () => {
    const erin = await userId('erin@acme.test');
    const refused = await api('POST', `/v1/tenants/${acme.id}/users/${erin}/queue/release`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/locked/);
    expect((await api('GET', `/v1/tenants/${acme.id}/users/${erin}/queue`)).body.messages).toHaveLength(2);

    expect((await api('POST', `/v1/tenants/${acme.id}/users/${erin}/unlock`, { reason: 'cleaned up' })).status).toBe(200);
    for (const id of ids.erin ?? []) {
      const delivered = await messageWithStatus(e2e.node, id, 'delivered');
      // Released by the unlock itself, not by the next hold check.
      expect(delivered.events.find((event) => event.event === 'hold-released')?.detail).toMatchObject({ by: 'unlock' });
    }
    await retryRounds();
    expect(await sinkSubjects()).toEqual(['alice 1', 'alice 2', 'bob 1', 'erin 1', 'erin 2']);
  });

  it('releases the mail by itself when a timed lock ends (the hold check)', async () => {
    await retryRounds();
    expect((await e2e.node.stores.log.get(ids.carol?.[0] ?? ''))?.message.status).toBe('held-locked');
    e2e.clock.advance(6 * MINUTE);
    const delivered = await messageWithStatus(e2e.node, ids.carol?.[0] ?? '', 'delivered');
    expect(delivered.events.find((event) => event.event === 'hold-released')?.detail).toMatchObject({ by: 'lock-ended' });
    expect((await e2e.node.stores.lockStore.read(await userId('carol@acme.test')))?.locked).toBe(false);
  });

  it('purges held mail with `queue purge`: files deleted, never delivered, the lock stays', async () => {
    const dave = ids.dave ?? [];
    const blobKeys = await Promise.all(dave.map(async (id) => (await e2e.node.stores.holdStore.list({ userId: await userId('dave@acme.test') })).find((held) => held.messageId === id)?.blobKey ?? ''));
    for (const key of blobKeys) expect(await e2e.node.stores.blobs.exists(key)).toBe(true);
    await expect(cli(['queue', 'release', '--tenant', 'acme', 'dave@acme.test'])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/dave@acme\.test is locked; .*unlock/) });
    expect(await cli(['queue', 'purge', '--tenant', 'acme', 'dave@acme.test'])).toMatch(/2 held messages of dave@acme\.test purged/);
    for (const id of dave) {
      const purged = await e2e.node.stores.log.get(id);
      expect(purged?.message.status).toBe('purged');
      expect(purged?.events.at(-1)).toMatchObject({ event: 'purged', detail: { by: 'operator' } });
    }
    for (const key of blobKeys) expect(await e2e.node.stores.blobs.exists(key)).toBe(false);
    expect((await e2e.node.stores.lockStore.read(await userId('dave@acme.test')))?.locked).toBe(true);

    // Unlocking later finds nothing to deliver.
    await cli(['unlock', '--tenant', 'acme', 'dave@acme.test']);
    await retryRounds();
    expect((await sinkSubjects()).filter((subject) => subject.startsWith('dave'))).toEqual([]);
    expect(await cli(['queue', 'status'])).toMatch(/held: 0 messages/);
  });

  it('holds new mail at the scan stage with `queue hold`, without a lock, until `queue release`', async () => {
    expect(await cli(['queue', 'hold', '--tenant', 'acme', 'frank@acme.test'])).toMatch(/frank@acme\.test is now on hold/);
    const [id = ''] = await send('frank@acme.test', 1);
    const held = await messageWithStatus(e2e.node, id, 'held-manual');
    expect(held.events.at(-1)).toMatchObject({ event: 'held-manual', detail: { stage: 'scan' } });
    await retryRounds();
    // The hold check leaves mail on hold alone: the user is not locked, but it is on hold.
    const stillHeld = await e2e.node.stores.log.get(id);
    expect(stillHeld?.message.status).toBe('held-manual');
    expect(stillHeld?.events.filter((event) => event.event === 'hold-released')).toEqual([]);
    expect(await cli(['queue', 'status'])).toMatch(/frank@acme\.test\s+acme\s+manual\s+1\s/);

    expect(await cli(['queue', 'release', '--tenant', 'acme', 'frank@acme.test'])).toMatch(/1 held message put back/);
    await messageWithStatus(e2e.node, id, 'delivered');
    await retryRounds();
    // Every message that was not purged reached the smarthost once.
    expect(await sinkSubjects()).toEqual(['alice 1', 'alice 2', 'bob 1', 'carol 1', 'erin 1', 'erin 2', 'frank 1']);
  });
});
