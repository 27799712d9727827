// Held mail on the real SQLite stores: the scan and deliver stages hold a locked sender's jobs
// before doing any work, a release re-queues each held job once even when two run at once, a
// purge deletes, and a release that died half-way is taken over later.
import { afterEach, describe, expect, it } from 'vitest';
import { makeLocksAndHolds } from '../../core/holds.js';
import { createLogger } from '../../core/log.js';
import type { Envelope } from '../../core/ports.js';
import { BuiltinSpamRules } from '../../core/scan/builtin-rules.js';
import { effectiveSettings } from '../../core/settings.js';
import type { SqsEvent } from '../../core/sqs-event.js';
import { makeDeliverHandler } from '../../lambdas/deliver/handler.js';
import { makeScanHandler } from '../../lambdas/scan/handler.js';
import { fakeResolver } from '../helpers/fake-dns.js';
import { closeTempStores, openTempStores } from '../helpers/temp-stores.js';

const quiet = createLogger('test', { level: 'error' });

afterEach(closeTempStores);

async function setup() {
  let now = Date.UTC(2026, 11, 1, 12);
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const { stores, config } = await openTempStores('holds', { hostname: 'relay.test', delivery: { relayHost: '127.0.0.1:9' } }, clock);
  const { locks, holds } = makeLocksAndHolds({
    store: stores.lockStore,
    holdStore: stores.holdStore,
    queue: stores.queue,
    blobs: stores.blobs,
    log: stores.log,
    counters: stores.counters,
    clock,
    configStore: stores.configStore,
    config,
    logger: quiet,
  });
  const tenant = await stores.configStore.createTenant('acme');
  await stores.configStore.addDomain(tenant.id, 'acme.test');
  const user = await stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: null });
  let seq = 0;
  const envelope = async (): Promise<Envelope> => {
    seq += 1;
    const queued: Envelope = {
      messageId: `M${seq}`,
      tenantId: tenant.id,
      userId: user.id,
      identity: user.identity,
      mailFrom: user.identity,
      rcptTo: ['bob@example.org'],
      blobKey: `messages/M${seq}.eml`,
      size: 20,
      receivedAt: now,
      clientIp: '192.0.2.1',
      helo: 'client.test',
    };
    await stores.blobs.put(queued.blobKey, Buffer.from('Subject: hi\r\n\r\nHello.\r\n'));
    await stores.log.create({ id: queued.messageId, tenantId: tenant.id, userId: user.id, identity: user.identity, mailFrom: queued.mailFrom, rcptTo: queued.rcptTo, size: 20, subject: 'hi', status: 'queued', receivedAt: now });
    return queued;
  };
  const lock = () => locks.lockAfterAbuse(user, [{ name: 'MANUAL_LOCK' }], { ...effectiveSettings(undefined), lockMinutes: 10, maxTimedUnlocks: 5 });
  return { stores, clock, config, locks, holds, user, envelope, lock };
}

const event = (...bodies: string[]): SqsEvent => ({
  Records: bodies.map((body, index) => ({
    messageId: `q${index}`,
    receiptHandle: `r${index}`,
    body,
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', ApproximateFirstReceiveTimestamp: '0' },
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:test',
  })),
});

describe('the pipeline stages hold a locked sender’s mail', () => {
  it('holds at the scan stage without scanning, and the deliver stage without attempting or waiting out a retry', async () => {
    const { stores, config, holds, envelope, lock } = await setup();
    await lock();
    const scan = makeScanHandler({
      blobs: stores.blobs,
      queue: stores.queue,
      log: stores.log,
      config,
      logger: quiet,
      clock: stores.clock,
      spamEngine: new BuiltinSpamRules(config.scanning.builtinRules),
      fingerprints: stores.fingerprints,
      quarantine: stores.quarantine,
      settingsFor: async () => effectiveSettings(undefined),
      holds,
    });
    const first = await envelope();
    expect(await scan(event(JSON.stringify(first)))).toEqual({ batchItemFailures: [] });
    expect((await stores.queue.depth('deliver')).visible).toBe(0);
    expect((await stores.log.get(first.messageId))?.events.map((item) => item.event)).toEqual(['held-locked']);

    const deliver = makeDeliverHandler({ blobs: stores.blobs, queue: stores.queue, log: stores.log, config, resolver: fakeResolver({}), logger: quiet, clock: stores.clock, holds });
    const second = await envelope();
    // A retry whose time has not come: held as well (not put back for the rest of its wait).
    const retry = JSON.stringify({ envelope: second, attempt: 3, pending: second.rcptTo, bounced: [], notBefore: stores.clock.now() + 600_000 });
    expect(await deliver(event(retry))).toEqual({ batchItemFailures: [] });
    expect(await stores.queue.depth('deliver')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    const held = await stores.holdStore.list({ userId: first.userId });
    expect(held.map((item) => [item.messageId, item.stage, item.reason])).toEqual([
      ['M1', 'scan', 'locked'],
      ['M2', 'deliver', 'locked'],
    ]);
    expect(held[1]?.body).toBe(retry);
    expect(await stores.blobs.exists(second.blobKey)).toBe(true);
  });

  it('keeps one held row for a duplicate receive and one for each distinct job of a message', async () => {
    const { stores, holds, envelope, lock } = await setup();
    await lock();
    const queued = await envelope();
    const job = JSON.stringify({ envelope: queued, attempt: 1, pending: queued.rcptTo });
    expect(await holds.holdIfSenderStopped('deliver', queued, job)).toBe(true);
    expect(await holds.holdIfSenderStopped('deliver', queued, job)).toBe(true);
    expect(await stores.holdStore.list({ userId: queued.userId })).toHaveLength(1);
    expect(await holds.holdIfSenderStopped('scan', queued, JSON.stringify(queued))).toBe(true);
    expect(await stores.holdStore.list({ userId: queued.userId })).toHaveLength(2);
  });
});

describe('release and purge', () => {
  it('re-queues each held job once when hold checks, a release and an unlock run at the same time', async () => {
    const { stores, clock, holds, locks, user, envelope, lock } = await setup();
    await lock();
    for (let n = 0; n < 20; n += 1) {
      const queued = await envelope();
      await holds.holdIfSenderStopped('deliver', queued, JSON.stringify({ envelope: queued, attempt: 1, pending: queued.rcptTo }));
    }
    // The timed lock ends: the hold checks, a release and an unlock all find the sender free at once.
    clock.advance(11 * 60_000);
    await Promise.all([holds.releaseEnded(), holds.releaseEnded(), holds.releaseIfFree(user.id, 'test'), locks.unlock(user.id, 'operator', 'fixed')]);
    expect((await stores.queue.depth('deliver')).visible).toBe(20);
    expect(await stores.holdStore.list({ userId: user.id })).toEqual([]);
    expect((await stores.log.get('M1'))?.message.status).toBe('queued');
  });

  it('does not put a released message back to queued once the pipeline has delivered it', async () => {
    const { stores, clock, config, user, envelope, lock } = await setup();
    // A pipeline faster than the release: it delivers each job the moment it is queued.
    const delivering = Object.create(stores.queue) as typeof stores.queue;
    delivering.send = async (queue, body, options) => {
      const sent = await stores.queue.send(queue, body, options);
      const job = JSON.parse(body) as Envelope;
      await stores.log.addEvent(job.messageId, 'delivered', {}, 'delivered');
      return sent;
    };
    const { holds, locks } = makeLocksAndHolds({ store: stores.lockStore, holdStore: stores.holdStore, queue: delivering, blobs: stores.blobs, log: stores.log, counters: stores.counters, clock, configStore: stores.configStore, config, logger: quiet });
    await lock();
    const queued = await envelope();
    await holds.holdIfSenderStopped('scan', queued, JSON.stringify(queued));
    await locks.unlock(user.id, 'operator', 'fixed');
    const logged = await stores.log.get(queued.messageId);
    expect(logged?.events.map((item) => item.event)).toEqual(['held-locked', 'hold-released', 'delivered']);
    expect(logged?.message.status).toBe('delivered');
  });

  it('queues nothing when the release cannot write the log (a full disk), and a later release takes the mail over', async () => {
    const { stores, clock, config, user, envelope, lock } = await setup();
    let full = false;
    const failing = Object.create(stores.log) as typeof stores.log;
    failing.addEvent = async (...args) => {
      if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      return stores.log.addEvent(...args);
    };
    const { holds } = makeLocksAndHolds({ store: stores.lockStore, holdStore: stores.holdStore, queue: stores.queue, blobs: stores.blobs, log: failing, counters: stores.counters, clock, configStore: stores.configStore, config, logger: quiet });
    await lock();
    const queued = await envelope();
    await holds.holdIfSenderStopped('scan', queued, JSON.stringify(queued));
    clock.advance(11 * 60_000); // the timed lock ends
    full = true;
    expect(await holds.releaseEnded()).toBe(0);
    expect(await stores.queue.depth('scan')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    expect(await stores.holdStore.list({ userId: user.id })).toHaveLength(1);
    full = false;
    clock.advance(11 * 60_000); // the failed release's claim is stale
    expect(await holds.releaseEnded()).toBe(1);
    expect((await stores.queue.depth('scan')).visible).toBe(1);
    expect(await stores.holdStore.list({ userId: user.id })).toEqual([]);
  });

  it('releases the held mail on an unlock, unless the sender is also on hold', async () => {
    const { stores, holds, locks, user, envelope, lock } = await setup();
    await lock();
    const queued = await envelope();
    await holds.holdIfSenderStopped('scan', queued, JSON.stringify(queued));
    await holds.hold(user, 'operator');
    await locks.unlock(user.id, 'operator', 'fixed');
    expect((await stores.queue.depth('scan')).visible).toBe(0);
    await stores.holdStore.removeSenderHold(user.id);
    await lock();
    await locks.unlock(user.id, 'operator', 'fixed again');
    expect((await stores.queue.depth('scan')).visible).toBe(1);
    expect((await stores.log.get(queued.messageId))?.events.at(-1)).toMatchObject({ event: 'hold-released', detail: { by: 'unlock' } });
  });

  it('leaves mail of a locked or on-hold sender held at the hold check, and releases it when a timed lock ends', async () => {
    const { stores, clock, holds, user, envelope, lock } = await setup();
    await lock();
    const queued = await envelope();
    await holds.holdIfSenderStopped('scan', queued, JSON.stringify(queued));
    expect(await holds.releaseEnded()).toBe(0);
    clock.advance(11 * 60_000);
    await holds.hold(user, 'operator');
    expect(await holds.releaseEnded()).toBe(0);
    await stores.holdStore.removeSenderHold(user.id);
    expect(await holds.releaseEnded()).toBe(1);
    expect((await stores.queue.depth('scan')).visible).toBe(1);
    expect((await stores.log.get(queued.messageId))?.events.at(-1)).toMatchObject({ event: 'hold-released', detail: { by: 'lock-ended', stage: 'scan' } });
  });

  it('takes over a release that died after claiming, once its claim is stale', async () => {
    const { stores, clock, holds, user, envelope, lock } = await setup();
    await lock();
    const queued = await envelope();
    await holds.holdIfSenderStopped('scan', queued, JSON.stringify(queued));
    // A release claimed the row and died before re-queueing it.
    expect(await stores.holdStore.claim(user.id, 'dead-release', clock.now(), clock.now() - 600_000)).toHaveLength(1);
    await holds.purge(user.id, 'operator');
    expect(await stores.holdStore.list({ userId: user.id })).toHaveLength(1);
    clock.advance(11 * 60_000);
    expect(await holds.purge(user.id, 'operator')).toEqual({ purged: 1 });
    expect(await stores.blobs.exists(queued.blobKey)).toBe(false);
    expect((await stores.log.get(queued.messageId))?.message.status).toBe('purged');
    expect(await stores.queue.depth('scan')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});
