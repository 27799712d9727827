// The single node's worker threads dying under a real SMTP client (bin/single-node.ts started as
// `outpost start` starts it: counters, acceptance writer and pipeline each in a thread of its
// own). A writer that dies with the end of DATA in hand: the client is answered 451 4.3.0 and
// nothing is queued; its retry is answered 250 and delivered. A counter thread that dies with a
// RCPT's counter call in hand (the invalid-recipient restriction's count; the rate limits are in
// the relay's memory): 451 4.3.0 to that RCPT; the RCPT again is admitted and the message
// delivered. A pipeline thread that dies while delivering: mail accepted before and while it was
// dead is delivered by the thread started again, without waiting out the visibility timeout of
// the message that was in flight. The threads die of a real uncaught error (worker-faults.ts).
// Threads that hang instead (their event loop blocked for real, worker-faults.ts) are treated as
// dead after queue.threadWatchdogSeconds (2 s here): the writer's and the counters' clients are
// answered 451 4.3.0 then, and the pipeline is started again and delivers what it had in flight.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startNode, type RunningNode } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import { addDkimKey } from '../../core/dkim/keys.js';
import { hashPassword } from '../../core/identity.js';
import { createLogger } from '../../core/log.js';
import { a, mx, startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { messageWithStatus, nodemailerReply, PASSWORD, parseReply, rawMessage, rawSession, sendWithNodemailer, submit } from '../helpers/e2e-node.js';
import { waitFor } from '../helpers/net.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { crashOnNextMessage, exited, hangOnNextMessage, jsonLines, newestWorker, workersOf } from '../helpers/worker-faults.js';

vi.mock('node:worker_threads', async (importOriginal) => (await import('../helpers/worker-faults.js')).recordingWorkers(await importOriginal()));

const ALICE = 'alice@acme.test';
/** A death is answered this fast (a worker thread starts in well under a second). */
const FAILS_WITHIN_MS = 5_000;
/** queue.threadWatchdogSeconds of the node under test. */
const WATCHDOG_MS = 2_000;

/**
 * The smarthost as the relay sees it: passes connections through to smtp-sink, or, while `hold`
 * is set, accepts them and never says a word (a delivery then stays in flight).
 */
interface SmarthostFront {
  port: number;
  hold: boolean;
  held: Set<Socket>;
  /** Closes the connections passed through so far (the relay keeps them for its next deliveries). */
  dropPassedThrough(): void;
  stop(): Promise<void>;
}

async function startSmarthostFront(targetPort: number): Promise<SmarthostFront> {
  const sockets = new Set<Socket>();
  const passed = new Set<Socket>();
  const front: SmarthostFront = {
    port: 0,
    hold: false,
    held: new Set(),
    dropPassedThrough: () => {
      for (const socket of passed) socket.destroy();
    },
    stop: async () => undefined,
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => {
      sockets.delete(client);
      front.held.delete(client);
    });
    if (front.hold) return void front.held.add(client);
    passed.add(client);
    client.on('close', () => passed.delete(client));
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => sockets.delete(upstream));
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.on('error', () => undefined);
  front.port = await new Promise<number>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  front.stop = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return front;
}

/** `promise`, or a failure naming the wait once `ms` have passed: nothing here may hang. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

describe('the single node when one of its worker threads dies', () => {
  let dataDir: string;
  let dns: DnsServer;
  let sink: SmtpSink;
  let front: SmarthostFront;
  let node: RunningNode;
  const log = jsonLines();
  /** What the threads' own loggers (counters, acceptance, pipeline) write to stdout, parsed; kept out of the test output. */
  const stdout = jsonLines();

  beforeAll(async () => {
    const write = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (!text.startsWith('{"time"')) return write(chunk, ...(rest as []));
      for (const line of text.split('\n').filter(Boolean)) stdout.write(line);
      return true;
    });
    dataDir = await mkdtemp(join(tmpdir(), 'outpost-thread-faults-'));
    dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
    sink = await startSmtpSink();
    front = await startSmarthostFront(sink.port);
    const config = parseConfig({
      dataDir,
      hostname: 'relay.test',
      listenAddress: '127.0.0.1',
      smtp: { port: 0, smtpsPort: 0, bouncePort: 0 },
      http: { port: 0 },
      // A held delivery stays in flight (no greeting) for 20 s, longer than this test needs.
      delivery: { relayHost: `127.0.0.1:${front.port}`, connectTimeoutSeconds: 20, retrySchedule: [1, 1, 1] },
      dns: { servers: [dns.address], timeoutMs: 1000 },
      // The default visibility timeout: a message in flight when its worker died must not wait it out.
      queue: { pollIntervalMs: 50, visibilityTimeoutSeconds: 300, threadWatchdogSeconds: WATCHDOG_MS / 1000 },
    });
    // No test clock: the pipeline runs in its worker thread, as under `outpost start`.
    node = await startNode(config, { logger: createLogger('outpost', { level: 'info', write: log.write }) });
    const tenant = await node.stores.configStore.createTenant('acme');
    await node.stores.configStore.addDomain(tenant.id, 'acme.test');
    // autoLock off: the invalid-recipient restriction then reads its count at every RCPT, a call to
    // the counter thread (the rate limits are reserved in the relay's memory, relay-counters.ts).
    await node.stores.configStore.createUser({
      tenantId: tenant.id,
      kind: 'mailbox',
      identity: ALICE,
      domain: 'acme.test',
      passwordHash: await hashPassword(PASSWORD),
      settings: { autoLock: false },
    });
    await addDkimKey(node.stores.dkimKeys, { domain: 'acme.test', now: Date.now() });
  });
  afterAll(async () => {
    await node?.stop();
    vi.restoreAllMocks();
    await Promise.all([front.stop(), dns.stop(), sink.stop()]);
    await rm(dataDir, { recursive: true, force: true });
  });

  const delivered = async (count: number): Promise<string[]> => (await sink.waitForMessages(count, 15_000)).map((mail) => mail.data.toString('utf8'));

  it('answers 451 4.3.0 when the acceptance writer dies with the end of DATA in hand, queues nothing, and accepts and delivers the retry', async () => {
    const writer = newestWorker('acceptance-worker.mjs');
    crashOnNextMessage(writer.worker);
    const sentAt = Date.now();
    const failed = await within(
      FAILS_WITHIN_MS,
      sendWithNodemailer(node.ports.submission, ALICE, { from: ALICE, to: 'bob@example.org', subject: 'writer dies' }).then(
        (response) => `accepted: ${response}`,
        (error: unknown) => nodemailerReply(error),
      ),
    );
    expect(parseReply(failed)).toMatchObject({ code: 451, enhanced: '4.3.0' });
    // At once, not after some timeout.
    expect(Date.now() - sentAt).toBeLessThan(FAILS_WITHIN_MS);
    expect(await exited(writer)).toBe(1);
    expect(stdout.withMessage('acceptance writer thread died')).toEqual([expect.objectContaining({ level: 'error', component: 'acceptance', code: 1, messages: 1, error: expect.stringMatching(/null/) })]);
    // Nothing of it was queued: only the retry below reaches the sink.
    const id = await submit(node.ports.submission, { from: ALICE, to: 'bob@example.org', subject: 'writer retried' });
    expect(workersOf('acceptance-worker.mjs')).toHaveLength(2);
    await messageWithStatus(node, id, 'delivered');
    const received = await delivered(1);
    expect(received).toHaveLength(1);
    expect(received[0]).toContain('Subject: writer retried');
    expect(await node.stores.log.search({ limit: 10 }).then((page) => page.items.map((item) => item.subject))).toEqual(['writer retried']);
  });

  it('answers 451 4.3.0 to a RCPT whose counter call the counter thread died with, admits the RCPT again, and delivers the message', async () => {
    const counters = newestWorker('counter-worker.mjs');
    const before = (await sink.messages()).length;
    const { smtp, auth } = await rawSession(node.ports.submission, ALICE);
    try {
      expect(auth).toMatch(/^235/);
      expect(await smtp.command(`MAIL FROM:<${ALICE}>`)).toMatch(/^250/);
      crashOnNextMessage(counters.worker);
      const sentAt = Date.now();
      expect(parseReply(await smtp.command('RCPT TO:<carol@example.org>'))).toMatchObject({ code: 451, enhanced: '4.3.0' });
      // At once: not the check runner's timeout (10 s), which also answers 451 4.3.0.
      expect(Date.now() - sentAt).toBeLessThan(FAILS_WITHIN_MS);
      expect(await exited(counters)).toBe(1);
      expect(stdout.withMessage('counter worker thread died')).toEqual([expect.objectContaining({ level: 'error', component: 'counters', code: 1, error: expect.stringMatching(/Cannot read properties of null/) })]);
      expect(stdout.lines.filter((line) => line.message === 'refused' && line.code === 451)).toEqual([
        expect.objectContaining({ phase: 'rcpt', enhancedCode: '4.3.0', symbols: [expect.objectContaining({ name: 'CHECK_ERROR', evidence: expect.objectContaining({ error: expect.stringMatching(/counter worker thread exited/) }) })] }),
      ]);
      // The client tries again: a new counter thread admits it.
      expect(await smtp.command('RCPT TO:<carol@example.org>')).toMatch(/^250/);
      expect(await smtp.command('DATA')).toMatch(/^354/);
      smtp.write(rawMessage(ALICE, 'carol@example.org', 'counter retried'));
      const end = await smtp.reply();
      expect(end).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(workersOf('counter-worker.mjs')).toHaveLength(2);
      const id = /queued as (\S+)/.exec(end)?.[1] ?? '';
      await messageWithStatus(node, id, 'delivered');
      expect((await delivered(before + 1)).filter((data) => data.includes('Subject: counter retried'))).toHaveLength(1);
      await smtp.command('QUIT');
    } finally {
      smtp.close();
    }
  });

  it('greets 451 4.3.0 when the counter thread dies with the IP reputation read in hand, keeps nothing of it, and greets the next connection with a new counter thread', async () => {
    // Any change to a reputation bucket drops what the relay keeps: the next greeting reads again.
    await node.stores.counters.add('reputation:ip:192.0.2.77', 1, 60_000);
    // The relay's rate limits are written to the counter thread once a second: let the last write pass.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const counters = newestWorker('counter-worker.mjs');
    const threads = workersOf('counter-worker.mjs').length;
    crashOnNextMessage(counters.worker);
    const greet = async (): Promise<string> => {
      const { client, greeting } = await RawSmtp.open(node.ports.submission);
      client.close();
      return greeting;
    };
    const sentAt = Date.now();
    expect(parseReply(await within(FAILS_WITHIN_MS * 2, greet()))).toMatchObject({ code: 451, enhanced: '4.3.0' });
    expect(Date.now() - sentAt).toBeLessThan(FAILS_WITHIN_MS);
    expect(await exited(counters)).toBe(1);
    // The failed read was not kept: the next connection asks again, and a new thread answers.
    expect(await within(FAILS_WITHIN_MS * 2, greet())).toMatch(/^220 /);
    expect(workersOf('counter-worker.mjs')).toHaveLength(threads + 1);
  });

  it('delivers, from the pipeline thread started again, the message in flight when it died and the one accepted meanwhile', async () => {
    const pipeline = newestWorker('pipeline-worker.mjs');
    const before = (await sink.messages()).length;
    // The first message is received for delivery and stays in flight: the smarthost never greets.
    front.hold = true;
    front.dropPassedThrough();
    const inFlight = await submit(node.ports.submission, { from: ALICE, to: 'dave@example.org', subject: 'in flight' });
    await waitFor('the delivery to connect', async () => front.held.size > 0, 15_000);
    front.hold = false;
    // The nudge for the second message kills the pipeline thread (an uncaught error); the message is accepted all the same.
    crashOnNextMessage(pipeline.worker);
    const meanwhile = await submit(node.ports.submission, { from: ALICE, to: 'erin@example.org', subject: 'meanwhile' });
    expect(await exited(pipeline)).toBe(1);
    const died = log.withMessage('pipeline worker thread exited');
    expect(died).toEqual([expect.objectContaining({ level: 'error', code: 1, error: expect.stringMatching(/null/), inMs: 1000 })]);
    // Started again a second later; the message in flight is delivered long before its 300 s visibility timeout.
    for (const id of [inFlight, meanwhile]) await messageWithStatus(node, id, 'delivered');
    const received = await delivered(before + 2);
    expect(received.filter((data) => data.includes('Subject: in flight'))).toHaveLength(1);
    expect(received.filter((data) => data.includes('Subject: meanwhile'))).toHaveLength(1);
    expect(workersOf('pipeline-worker.mjs')).toHaveLength(2);
    expect(log.withMessage('pipeline worker thread started')).toHaveLength(2);
    await waitFor('the in-flight recovery to be logged', async () => stdout.withMessage('made the messages the dead pipeline worker had in flight visible again').length > 0, 5_000);
    // The message held at the smarthost, and the second one too if the dying thread had already received it for its scan.
    const recovered = stdout.withMessage('made the messages the dead pipeline worker had in flight visible again');
    expect(recovered).toEqual([expect.objectContaining({ component: 'pipeline', count: expect.any(Number) })]);
    expect(recovered[0]?.count).toBeGreaterThanOrEqual(1);
  });

  it('answers 451 4.3.0 once the watchdog time has passed when the acceptance writer hangs with the end of DATA in hand, and accepts and delivers the retry with a new writer', async () => {
    const writer = newestWorker('acceptance-worker.mjs');
    const writers = workersOf('acceptance-worker.mjs').length;
    const before = (await sink.messages()).length;
    hangOnNextMessage(writer.worker);
    const sentAt = Date.now();
    const failed = await within(
      WATCHDOG_MS + FAILS_WITHIN_MS,
      sendWithNodemailer(node.ports.submission, ALICE, { from: ALICE, to: 'bob@example.org', subject: 'writer hangs' }).then(
        (response) => `accepted: ${response}`,
        (error: unknown) => nodemailerReply(error),
      ),
    );
    expect(parseReply(failed)).toMatchObject({ code: 451, enhanced: '4.3.0' });
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(WATCHDOG_MS - 5);
    expect(await exited(writer)).toBe(1);
    expect(stdout.withMessage('acceptance writer thread hung')).toEqual([expect.objectContaining({ level: 'error', component: 'acceptance', watchdogMs: WATCHDOG_MS, messages: 1 })]);
    // The retry is committed by a new writer, answered 250 and delivered; the hung attempt was never queued.
    const id = await submit(node.ports.submission, { from: ALICE, to: 'bob@example.org', subject: 'writer retried after a hang' });
    expect(workersOf('acceptance-worker.mjs')).toHaveLength(writers + 1);
    await messageWithStatus(node, id, 'delivered');
    const received = await delivered(before + 1);
    expect(received.filter((data) => data.includes('Subject: writer retried after a hang'))).toHaveLength(1);
    expect(received.filter((data) => data.includes('Subject: writer hangs'))).toHaveLength(0);
  });

  it('answers 451 4.3.0 to a RCPT whose counter call a hung counter thread holds once the watchdog time has passed, and a new counter thread admits the RCPT again', async () => {
    const counters = newestWorker('counter-worker.mjs');
    const threads = workersOf('counter-worker.mjs').length;
    const before = (await sink.messages()).length;
    const { smtp, auth } = await rawSession(node.ports.submission, ALICE);
    try {
      expect(auth).toMatch(/^235/);
      expect(await smtp.command(`MAIL FROM:<${ALICE}>`)).toMatch(/^250/);
      hangOnNextMessage(counters.worker);
      const sentAt = Date.now();
      expect(parseReply(await smtp.command('RCPT TO:<frank@example.org>'))).toMatchObject({ code: 451, enhanced: '4.3.0' });
      // The watchdog's time, not the check runner's timeout (10 s), which also answers 451 4.3.0.
      const waited = Date.now() - sentAt;
      expect(waited).toBeGreaterThanOrEqual(WATCHDOG_MS - 5);
      expect(waited).toBeLessThan(WATCHDOG_MS + FAILS_WITHIN_MS);
      expect(await exited(counters)).toBe(1);
      expect(stdout.withMessage('counter worker thread hung')).toEqual([expect.objectContaining({ level: 'error', component: 'counters', watchdogMs: WATCHDOG_MS })]);
      expect(stdout.lines.filter((line) => line.message === 'refused' && line.code === 451 && JSON.stringify(line.symbols).includes('(hung)'))).toHaveLength(1);
      expect(await smtp.command('RCPT TO:<frank@example.org>')).toMatch(/^250/);
      expect(await smtp.command('DATA')).toMatch(/^354/);
      smtp.write(rawMessage(ALICE, 'frank@example.org', 'counter hung, retried'));
      const end = await smtp.reply();
      expect(end).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(workersOf('counter-worker.mjs')).toHaveLength(threads + 1);
      await messageWithStatus(node, /queued as (\S+)/.exec(end)?.[1] ?? '', 'delivered');
      expect((await delivered(before + 1)).filter((data) => data.includes('Subject: counter hung, retried'))).toHaveLength(1);
      await smtp.command('QUIT');
    } finally {
      smtp.close();
    }
  });

  it('terminates the pipeline thread once its heartbeats stop, logs what it had in hand, starts it again, and delivers the message in flight and the one accepted while it hung', async () => {
    const pipeline = newestWorker('pipeline-worker.mjs');
    const threads = workersOf('pipeline-worker.mjs').length;
    const started = log.withMessage('pipeline worker thread started').length;
    const before = (await sink.messages()).length;
    // The first message is received for delivery and stays in flight: the smarthost never greets.
    front.hold = true;
    front.dropPassedThrough();
    const inFlight = await submit(node.ports.submission, { from: ALICE, to: 'grace@example.org', subject: 'in flight when it hung' });
    await waitFor('the delivery to connect', async () => front.held.size > 0, 15_000);
    // A heartbeat after the delivery began: it names the record in hand.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    front.hold = false;
    // The nudge for the second message blocks the pipeline thread for good; the message is accepted all the same.
    const threadId = pipeline.worker.threadId;
    hangOnNextMessage(pipeline.worker);
    const hungAt = Date.now();
    const meanwhile = await submit(node.ports.submission, { from: ALICE, to: 'heidi@example.org', subject: 'accepted while it hung' });
    expect(await exited(pipeline, WATCHDOG_MS + 10_000)).toBe(1);
    expect(Date.now() - hungAt).toBeGreaterThanOrEqual(WATCHDOG_MS - 1_000);
    const hung = log.withMessage('pipeline worker thread hung');
    expect(hung).toEqual([
      expect.objectContaining({
        level: 'error',
        watchdogMs: WATCHDOG_MS,
        threadId,
        phase: 'running',
        inMs: expect.any(Number),
        inHand: expect.arrayContaining([expect.objectContaining({ queue: 'deliver', queueMessageId: expect.any(String), receiveCount: 1, forMs: expect.any(Number) })]),
      }),
    ]);
    expect(Number(hung[0]?.silentMs)).toBeGreaterThanOrEqual(WATCHDOG_MS);
    // Started again; both are delivered long before the 300 s visibility timeout of the one in flight.
    for (const id of [inFlight, meanwhile]) await messageWithStatus(node, id, 'delivered');
    const received = await delivered(before + 2);
    expect(received.filter((data) => data.includes('Subject: in flight when it hung'))).toHaveLength(1);
    expect(received.filter((data) => data.includes('Subject: accepted while it hung'))).toHaveLength(1);
    expect(workersOf('pipeline-worker.mjs')).toHaveLength(threads + 1);
    expect(log.withMessage('pipeline worker thread started')).toHaveLength(started + 1);
    // Terminated by the watchdog: not logged a second time as an exit.
    expect(log.withMessage('pipeline worker thread exited')).toHaveLength(1);
  });
});
