// When the single node's pipeline thread (bin/pipeline-thread.ts) dies: it is started again after
// a wait that doubles while new threads keep dying soon after they start (a database that cannot
// be opened must not load the whole pipeline every second), back to the first wait once a thread
// has run a while; no thread to be had for a restart is logged and tried again later, never the
// end of the relay; a stop while it is dead, or while it dies, ends at once. The threads are real
// and die for real (a data folder they cannot open, an uncaught error in the worker module).
// One that hangs (its event loop blocked for real, worker-faults.ts) stops its heartbeats, and is
// terminated and started again once queue.threadWatchdogSeconds have passed without one; a job
// that hangs every thread that takes it ends in its dead-letter queue, counted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { openLocalStores } from '../../bin/local-stores.js';
import { pipelineThread } from '../../bin/pipeline-thread.js';
import { deliverJob } from '../../lambdas/deliver/handler.js';
import { systemClock, type Envelope } from '../../core/ports.js';
import { parseConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import type { MetricRecorder } from '../../core/metrics.js';
import { waitFor } from '../helpers/net.js';
import { startSmtpSink } from '../helpers/smtp-sink.js';
import { crashOnNextMessage, exited, hangNow, hangOnNextMessage, jsonLines, newestWorker, refuseStarts, startedWorkers, workersOf } from '../helpers/worker-faults.js';

vi.mock('node:worker_threads', async (importOriginal) => (await import('../helpers/worker-faults.js')).recordingWorkers(await importOriginal()));

const MODULE = 'pipeline-worker.mjs';
const DIED = 'pipeline worker thread exited; starting it again';
const HUNG = 'pipeline worker thread hung (no heartbeat); terminated, starting it again';
const metrics: MetricRecorder = { inc: () => undefined, observe: () => undefined };

function bounded<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms).unref())]);
}

describe('the pipeline thread when its worker dies', () => {
  let dir: string;
  let log: ReturnType<typeof jsonLines>;
  let stop: (() => Promise<void>) | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-pipeline-faults-'));
    log = jsonLines();
    startedWorkers.length = 0;
    // The worker threads' own log lines (they inherit the environment): only errors.
    vi.stubEnv('OUTPOST_LOG_LEVEL', 'error');
  });
  afterEach(async () => {
    await stop?.();
    stop = undefined;
    vi.unstubAllEnvs();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (dataDir: string, restartDelayMs: { first: number; max: number; stableAfter: number }, threadWatchdogSeconds?: number) => {
    const config = parseConfig({ dataDir, hostname: 'relay.test', listenAddress: '127.0.0.1', queue: { pollIntervalMs: 50, threadWatchdogSeconds } });
    const pipeline = pipelineThread({ config, logger: createLogger('outpost', { level: 'info', write: log.write }), metrics, restartDelayMs });
    stop = () => bounded(pipeline.stop());
    pipeline.start();
    return pipeline;
  };

  it('waits twice as long before each restart of a worker that dies at start, up to the ceiling, and a stop while it waits ends at once', async () => {
    // The data folder is a file: each worker dies opening its database.
    const dataDir = join(dir, 'not-a-folder');
    writeFileSync(dataDir, '');
    const pipeline = start(dataDir, { first: 100, max: 200, stableAfter: 60_000 });
    await waitFor('three deaths', async () => log.withMessage(DIED).length >= 3, { timeoutMs: 10_000, intervalMs: 20 });
    const deaths = log.withMessage(DIED).slice(0, 3);
    expect(deaths.map((line) => line.inMs)).toEqual([100, 200, 200]);
    for (const death of deaths) expect(death).toMatchObject({ level: 'error', code: 1, error: expect.stringMatching(/ENOTDIR|EEXIST/) });
    // Each new worker started no sooner than the wait announced at the death before it.
    const starts = workersOf(MODULE).map((entry) => entry.startedAt);
    for (let i = 1; i < Math.min(starts.length, 3); i += 1) expect((starts[i] ?? 0) - (starts[i - 1] ?? 0)).toBeGreaterThanOrEqual(Number(deaths[i - 1]?.inMs) - 5);

    const started = workersOf(MODULE).length;
    const stopping = Date.now();
    await bounded(pipeline.stop());
    expect(Date.now() - stopping).toBeLessThan(1000);
    // No restart after the stop: the longest wait (200 ms) and then some, with nothing to wait for but time.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const afterStop = workersOf(MODULE);
    expect(afterStop).toHaveLength(started);
    for (const entry of afterStop) await exited(entry);
  });

  it('waits the first delay again once a worker has run a while, and doubles it for workers that die soon after they start', async () => {
    const pipeline = start(dir, { first: 100, max: 1000, stableAfter: 500 });
    const startedAgain = (count: number) => waitFor(`worker ${count} to start`, async () => log.withMessage('pipeline worker thread started').length >= count, 10_000);
    const crash = async (): Promise<void> => {
      const entry = newestWorker(MODULE);
      crashOnNextMessage(entry.worker);
      pipeline.nudge('scan');
      expect(await exited(entry)).toBe(1);
    };
    await startedAgain(1);
    await crash();
    await startedAgain(2);
    await crash();
    await startedAgain(3);
    const third = log.withMessage('pipeline worker thread started').at(-1);
    const since = Date.parse(String(third?.time));
    await waitFor('the third worker to have run its pipeline for 0.5 s', async () => Date.now() - since >= 600, 5_000);
    await crash();
    // Logged at the death, with the wait: no need to wait for a fourth worker.
    await waitFor('the third death to be logged', async () => log.withMessage(DIED).length === 3, 5_000);
    expect(log.withMessage(DIED).map((line) => line.inMs)).toEqual([100, 200, 100]);
    for (const death of log.withMessage(DIED)) expect(death.error).toMatch(/null/);
  });

  it('keeps the relay running when no thread can be had to start the worker again, tries again after a doubling wait, and ends a stop the worker dies of', async () => {
    const pipeline = start(dir, { first: 100, max: 1000, stableAfter: 60_000 });
    await waitFor('the worker to start', async () => log.withMessage('pipeline worker thread started').length === 1, 10_000);
    const first = newestWorker(MODULE);
    refuseStarts(MODULE, 2);
    crashOnNextMessage(first.worker);
    pipeline.nudge('scan');
    expect(await exited(first)).toBe(1);
    // Had the refusal escaped the restart timer, it would have ended this process (vitest reports it as an error).
    await waitFor('a worker to start again', async () => log.withMessage('pipeline worker thread started').length === 2, 10_000);
    expect(log.withMessage(DIED).map((line) => line.inMs)).toEqual([100]);
    expect(log.withMessage('cannot start the pipeline worker thread; trying again')).toEqual([
      expect.objectContaining({ level: 'error', error: expect.stringMatching(/EAGAIN/), inMs: 200 }),
      expect.objectContaining({ level: 'error', error: expect.stringMatching(/EAGAIN/), inMs: 400 }),
    ]);
    expect(workersOf(MODULE)).toHaveLength(2);

    // The stop request is the message the second worker dies of: the stop ends all the same, and nothing starts again.
    const second = newestWorker(MODULE);
    crashOnNextMessage(second.worker);
    await bounded(pipeline.stop(), 5_000);
    expect(await exited(second)).toBe(1);
    expect(log.withMessage(DIED)).toHaveLength(1);
    expect(workersOf(MODULE)).toHaveLength(2);
  });

  it('leaves a worker alone while its heartbeats come, idle or not; terminates one whose heartbeats stop, logs it once, and starts it again', async () => {
    const pipeline = start(dir, { first: 100, max: 1000, stableAfter: 60_000 }, 1);
    await waitFor('the worker to start', async () => log.withMessage('pipeline worker thread started').length === 1, 10_000);
    // Idle for twice the watchdog time: its heartbeats keep it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(log.withMessage(HUNG)).toEqual([]);
    const first = newestWorker(MODULE);
    const threadId = first.worker.threadId;
    hangOnNextMessage(first.worker);
    pipeline.nudge('scan');
    expect(await exited(first)).toBe(1);
    expect(log.withMessage(HUNG)).toEqual([expect.objectContaining({ level: 'error', watchdogMs: 1000, threadId, phase: 'running', inHand: [], inMs: 100 })]);
    expect(Number(log.withMessage(HUNG)[0]?.silentMs)).toBeGreaterThanOrEqual(1000);
    await waitFor('a worker to start again', async () => log.withMessage('pipeline worker thread started').length === 2, 10_000);
    // Its end was the watchdog's: not logged again as a death.
    expect(log.withMessage(DIED)).toEqual([]);
    expect(workersOf(MODULE)).toHaveLength(2);
  });

  it('ends a stop the worker hangs on once the watchdog gives up on it, without starting it again', async () => {
    const pipeline = start(dir, { first: 100, max: 1000, stableAfter: 60_000 }, 1);
    await waitFor('the worker to start', async () => log.withMessage('pipeline worker thread started').length === 1, 10_000);
    const first = newestWorker(MODULE);
    hangOnNextMessage(first.worker);
    const stopping = Date.now();
    // The stop would otherwise wait 60 s for the worker to finish.
    await bounded(pipeline.stop(), 5_000);
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(900);
    expect(await exited(first)).toBe(1);
    expect(log.withMessage('pipeline worker thread hung while stopping')).toEqual([expect.objectContaining({ level: 'error', phase: 'stopping' })]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(workersOf(MODULE)).toHaveLength(1);
  });

  it('moves a message that hangs every thread that takes it to the dead-letter queue after queue.maxReceives, with the operator alert counted, instead of parking it', async () => {
    // The smarthost accepts connections and never greets: each thread that receives the job holds it in flight, and the test then hangs that thread.
    const held = new Set<Socket>();
    const silent = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => held.delete(socket));
    });
    const silentPort = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as AddressInfo).port)));
    const counted: Array<{ name: string; labels: unknown }> = [];
    const counting: MetricRecorder = { inc: (name, ...args) => void counted.push({ name, labels: args[0] }), observe: () => undefined };
    const config = parseConfig({
      dataDir: dir,
      hostname: 'relay.test',
      listenAddress: '127.0.0.1',
      delivery: { relayHost: `127.0.0.1:${silentPort}`, connectTimeoutSeconds: 60 },
      queue: { pollIntervalMs: 50, visibilityTimeoutSeconds: 300, maxReceives: 2, threadWatchdogSeconds: 1 },
    });
    // The job, as the scan leaves it: a message log record, its file, its deliver job.
    const stores = openLocalStores(config, systemClock);
    const envelope: Envelope = { messageId: 'HANGS-1', tenantId: 't', userId: 'u', identity: 'alice@acme.test', mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], blobKey: 'messages/HANGS-1.eml', size: 60, receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'client.test' };
    await stores.blobs.put(envelope.blobKey, Buffer.from('From: alice@acme.test\r\nTo: bob@example.org\r\nSubject: hangs\r\n\r\nHello.\r\n'));
    await stores.log.create({ id: envelope.messageId, tenantId: envelope.tenantId, userId: envelope.userId, identity: envelope.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: envelope.size, subject: 'hangs', status: 'queued', receivedAt: envelope.receivedAt });
    await stores.queue.send('deliver', JSON.stringify(deliverJob(envelope)));
    const pipeline = pipelineThread({ config, logger: createLogger('outpost', { level: 'info', write: log.write }), metrics: counting, restartDelayMs: { first: 100, max: 200, stableAfter: 60_000 } });
    stop = async () => {
      await bounded(pipeline.stop());
      stores.close();
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    };
    pipeline.start();
    // Each receive: the job in flight at the silent smarthost, then the thread hangs; two receives, then the dead-letter queue.
    for (let receive = 1; receive <= 2; receive += 1) {
      await waitFor(`receive ${receive} to hold the job in flight`, async () => held.size > 0, 15_000);
      // A heartbeat (every 250 ms with a 1 s watchdog) with the job in hand, then the hang.
      await new Promise((resolve) => setTimeout(resolve, 400));
      const entry = newestWorker(MODULE);
      hangNow(entry.worker);
      expect(await exited(entry)).toBe(1);
      await waitFor('the held connection to close', async () => held.size === 0, 5_000);
    }
    await waitFor('the job in the dead-letter queue', async () => (await stores.queue.depth('deliver-dlq')).visible === 1, { timeoutMs: 15_000, intervalMs: 50 });
    expect(log.withMessage(HUNG)).toHaveLength(2);
    expect(log.withMessage(HUNG).map((line) => line.inHand)).toEqual([
      [expect.objectContaining({ queue: 'deliver', receiveCount: 1 })],
      [expect.objectContaining({ queue: 'deliver', receiveCount: 2 })],
    ]);
    // The operator's alert (watchDeadLetters in the worker): outpost_dead_letters_total, sent to the relay's metrics.
    await waitFor('the dead letter to be counted', async () => counted.some((event) => event.name === 'outpost_dead_letters_total'), 5_000);
    expect(counted.filter((event) => event.name === 'outpost_dead_letters_total')).toEqual([{ name: 'outpost_dead_letters_total', labels: { queue: 'deliver' } }]);
    expect(await stores.queue.depth('deliver')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    // A third thread runs, and holds nothing.
    expect(held.size).toBe(0);
    expect(workersOf(MODULE)).toHaveLength(3);
  });

  it('lets the messages scanned in one batch with a message that hangs every thread go on alone to delivery, and dead-letters only that one', async () => {
    // clamd as a message that hangs the scan would meet it: it answers "OK" to every stream but
    // the one carrying the marker, which it holds unanswered (and the test then hangs the thread,
    // as a scan that never ends would). The stand-in is for the fault only: no clamd stalls on cue.
    const stalled = new Set<Socket>();
    const clamd = createServer((socket) => {
      let data = Buffer.alloc(0);
      socket.on('error', () => undefined);
      socket.on('close', () => stalled.delete(socket));
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        // zINSTREAM\0, then chunks of <4-byte length><bytes>, ended by a zero length.
        if (data.length < 4 || data.readUInt32BE(data.length - 4) !== 0) return;
        if (data.includes('HANG-THE-SCAN')) stalled.add(socket);
        else socket.end('stream: OK\0');
      });
    });
    const clamdPort = await new Promise<number>((resolve) => clamd.listen(0, '127.0.0.1', () => resolve((clamd.address() as AddressInfo).port)));
    const sink = await startSmtpSink();
    const config = parseConfig({
      dataDir: dir,
      hostname: 'relay.test',
      listenAddress: '127.0.0.1',
      delivery: { relayHost: `127.0.0.1:${sink.port}` },
      scanning: { clamd: `127.0.0.1:${clamdPort}`, engineTimeoutMs: 120_000 },
      queue: { pollIntervalMs: 50, visibilityTimeoutSeconds: 300, maxReceives: 2, threadWatchdogSeconds: 1 },
    });
    const stores = openLocalStores(config, systemClock);
    const tenant = await stores.configStore.createTenant('acme');
    await stores.configStore.addDomain(tenant.id, 'acme.test');
    const user = await stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: null });
    // Three accepted messages, queued for the scan together: one hangs it, two are fine.
    for (const [id, body] of [['NEIGHBOUR-1', 'Hello.'], ['POISON', 'HANG-THE-SCAN'], ['NEIGHBOUR-2', 'Hello again.']] as const) {
      const raw = Buffer.from(`From: alice@acme.test\r\nTo: bob@example.org\r\nSubject: ${id}\r\nMessage-ID: <${id}@acme.test>\r\n\r\n${body}\r\n`);
      const envelope: Envelope = { messageId: id, tenantId: tenant.id, userId: user.id, identity: user.identity, mailFrom: 'alice@acme.test', rcptTo: ['bob@example.org'], blobKey: `messages/${id}.eml`, size: raw.length, receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'client.test' };
      await stores.blobs.put(envelope.blobKey, raw);
      await stores.log.create({ id, tenantId: tenant.id, userId: user.id, identity: user.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: raw.length, subject: id, status: 'queued', receivedAt: envelope.receivedAt });
      await stores.queue.send('scan', JSON.stringify(envelope));
    }
    const pipeline = pipelineThread({ config, logger: createLogger('outpost', { level: 'info', write: log.write }), metrics, restartDelayMs: { first: 100, max: 200, stableAfter: 60_000 } });
    stop = async () => {
      await bounded(pipeline.stop());
      stores.close();
      for (const socket of stalled) socket.destroy();
      await new Promise((resolve) => clamd.close(resolve));
      await sink.stop();
    };
    pipeline.start();
    // Each time the poison's scan is held: a heartbeat with it in hand, then the thread hangs.
    for (let hang = 1; hang <= 3 && (await stores.queue.depth('scan-dlq')).visible === 0; hang += 1) {
      await waitFor(`the poison's scan to be held (hang ${hang})`, async () => stalled.size > 0 || (await stores.queue.depth('scan-dlq')).visible > 0, 15_000);
      if (stalled.size === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 400));
      const entry = newestWorker(MODULE);
      hangNow(entry.worker);
      expect(await exited(entry)).toBe(1);
      for (const socket of stalled) socket.destroy();
      await waitFor('the held stream to close', async () => stalled.size === 0, 5_000);
    }
    await waitFor('the poison in the dead-letter queue', async () => (await stores.queue.depth('scan-dlq')).visible > 0, { timeoutMs: 15_000, intervalMs: 50 });
    await waitFor('the scan queue to empty', async () => (await stores.queue.depth('scan')).visible + (await stores.queue.depth('scan')).inFlight === 0, { timeoutMs: 15_000, intervalMs: 50 });
    // Only the poison went there; both neighbours reached the smarthost.
    expect(stores.queue.bodies(['scan-dlq']).map((body) => (JSON.parse(body) as { messageId?: string; envelope?: { messageId: string } }).messageId ?? '')).toEqual(['POISON']);
    const delivered = await sink.waitForMessages(2, 15_000);
    expect(new Set(delivered.map((message) => /Subject: (\S+)/.exec(message.data.toString())?.[1]))).toEqual(new Set(['NEIGHBOUR-1', 'NEIGHBOUR-2']));
    expect(await stores.queue.depth('scan')).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});
