// The scan handler with a real clamd, the built-in spam rules, and the SQLite stores and queue.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClamdScanner } from '../../../adapters/scan/clamd.js';
import { SqliteFingerprintStore } from '../../../adapters/local/fingerprint-store.js';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQuarantineStore } from '../../../adapters/local/quarantine-store.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import type { Symbol } from '../../../core/checks/check.js';
import { parseConfig } from '../../../core/config.js';
import type { Envelope, Logger } from '../../../core/ports.js';
import { BuiltinSpamRules } from '../../../core/scan/builtin-rules.js';
import { GTUBE } from '../../../core/scan/engines.js';
import { purgeQuarantine, releaseFromQuarantine } from '../../../core/scan/quarantine.js';
import { effectiveSettings, type SettingOverrides } from '../../../core/settings.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import { makeScanHandler, scanStartupWarnings, type ScanHandlerDeps } from '../../../lambdas/scan/handler.js';
import { EICAR, startClamd, type TestDaemon } from '../../helpers/clamd.js';
import { freePort } from '../../helpers/net.js';

let clamd: TestDaemon;
const silent: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

beforeAll(async () => {
  clamd = await startClamd();
});
afterAll(async () => {
  await clamd?.stop();
});

function setup(overrides: SettingOverrides = {}, options: { clamdPort?: number; retrySchedule?: number[] } = {}) {
  const db = openDatabase(':memory:');
  let now = 1_800_000_000_000;
  const clock = { now: () => now };
  const dir = mkdtempSync(join(tmpdir(), 'outpost-scan-'));
  const config = parseConfig({ dataDir: dir, hostname: 'relay.example.net', ...(options.retrySchedule ? { delivery: { retrySchedule: options.retrySchedule } } : {}) });
  const abuse: Array<{ kind: string; symbols: Symbol[] }> = [];
  const deps: ScanHandlerDeps = {
    blobs: new FsBlobStore(join(dir, 'blobs')),
    queue: new SqliteQueue(db, { maxReceives: 5, clock }),
    log: new SqliteMessageLog(db, clock),
    config,
    logger: silent,
    clock,
    virusScanner: new ClamdScanner({ host: '127.0.0.1', port: options.clamdPort ?? clamd.port }, 5_000),
    spamEngine: new BuiltinSpamRules(config.scanning.builtinRules),
    fingerprints: new SqliteFingerprintStore(db),
    quarantine: new SqliteQuarantineStore(db),
    settingsFor: async () => effectiveSettings(overrides),
    onAbuse: async (_envelope, kind, symbols) => {
      abuse.push({ kind, symbols });
    },
  };
  const handler = makeScanHandler(deps);
  let seq = 0;
  const submit = async (raw: Buffer, extra: Partial<Envelope> = {}) => {
    seq += 1;
    const envelope: Envelope = {
      messageId: `MSG${seq}`,
      tenantId: 'tenant-1',
      userId: 'user-1',
      identity: 'alice@example.com',
      mailFrom: 'alice@example.com',
      rcptTo: ['bob@example.org'],
      blobKey: `messages/MSG${seq}.eml`,
      size: raw.length,
      receivedAt: now,
      clientIp: '192.0.2.10',
      helo: 'laptop.example.com',
      ...extra,
    };
    await deps.blobs.put(envelope.blobKey, raw);
    await deps.log.create({ id: envelope.messageId, tenantId: 'tenant-1', userId: 'user-1', identity: envelope.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: raw.length, subject: null, status: 'queued', receivedAt: now });
    const result = await handler(event(JSON.stringify(envelope)));
    return { envelope, result };
  };
  const deliverJobs = async () => {
    const received = await deps.queue.receive('deliver', { max: 10, visibilityTimeoutSeconds: 60 });
    return received.map((item) => JSON.parse(item.body) as { envelope: Envelope; attempt: number; pending: string[] });
  };
  return { deps, submit, deliverJobs, abuse, advance: (ms: number) => (now += ms) };
}

function event(body: string): SqsEvent {
  return {
    Records: [
      {
        messageId: 'sqs-1',
        receiptHandle: 'r-1',
        body,
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: '0', ApproximateFirstReceiveTimestamp: '0' },
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:outpost:sqs:local:scan',
      },
    ],
  };
}

const mail = (options: { text: string; subject?: string; attachment?: Buffer; extraFrom?: boolean }): Promise<Buffer> =>
  new MailComposer({
    from: 'alice@example.com',
    to: 'bob@example.org',
    subject: options.subject ?? 'Project notes',
    text: options.text,
    ...(options.extraFrom ? { headers: { From: 'ceo@example.com' } } : {}),
    ...(options.attachment ? { attachments: [{ filename: 'tool.com', content: options.attachment, contentType: 'application/octet-stream' }] } : {}),
  })
    .compile()
    .build();

describe('scan handler', () => {
  it('queues a clean message for delivery and logs "scanned" with its symbols', async () => {
    const { submit, deliverJobs, deps, abuse } = setup();
    const { envelope, result } = await submit(await mail({ text: 'Hi Bob, the notes from the meeting are below.' }));
    expect(result.batchItemFailures).toEqual([]);
    expect(await deliverJobs()).toEqual([{ envelope, attempt: 1, pending: ['bob@example.org'], bounced: [] }]);
    const logged = await deps.log.get(envelope.messageId);
    expect(logged?.events.map((item) => item.event)).toEqual(['scanned']);
    expect(logged?.events[0]?.detail).toMatchObject({ kind: 'clean', spam: false });
    expect(abuse).toEqual([]);
  });

  it('quarantines a virus with its signature, reports to the sender without a copy, and counts abuse', async () => {
    const { submit, deliverJobs, deps, abuse } = setup();
    const { envelope, result } = await submit(await mail({ text: 'Here is the tool.', attachment: Buffer.from(EICAR) }));
    expect(result.batchItemFailures).toEqual([]);
    const held = await deps.quarantine.get(envelope.messageId);
    expect(held?.kind).toBe('virus');
    expect(held?.symbols).toContainEqual({ name: 'VIRUS_FOUND', evidence: { signature: expect.stringMatching(/EICAR/), engine: 'clamd' } });
    // The only deliver job is the report: null sender, to the original sender.
    const jobs = await deliverJobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.envelope).toMatchObject({ mailFrom: '', rcptTo: ['alice@example.com'] });
    const report = (await deps.blobs.get(jobs[0]?.envelope.blobKey ?? '')).toString();
    expect(report).toMatch(/a virus was found \(Outpost\.Test\.EICAR/);
    expect(report).toContain(envelope.messageId);
    expect(report).not.toContain(EICAR);
    expect(report).not.toContain(Buffer.from(EICAR).toString('base64').slice(0, 20));
    expect(report).toMatch(/Auto-Submitted: auto-replied/);
    const logged = await deps.log.get(envelope.messageId);
    expect(logged?.message.status).toBe('quarantined');
    expect(logged?.events.at(-1)?.detail).toMatchObject({ kind: 'virus', reasons: ['VIRUS_FOUND'] });
    expect(abuse.map((item) => item.kind)).toEqual(['virus']);
    // The attachment's hash was learned: it is on the blocklist now.
    expect((await deps.fingerprints.listBlockedHashes()).map((item) => item.source)).toEqual(['virus']);
  });

  it('leaves the subject out of the report when the subject itself carries the virus', async () => {
    const { submit, deliverJobs, deps } = setup();
    const { envelope } = await submit(await mail({ text: 'Nothing to see.', subject: `fw: ${EICAR}` }));
    expect((await deps.quarantine.get(envelope.messageId))?.kind).toBe('virus');
    const jobs = await deliverJobs();
    expect(jobs.map((job) => job.envelope.rcptTo)).toEqual([['alice@example.com']]);
    const report = (await deps.blobs.get(jobs[0]?.envelope.blobKey ?? '')).toString();
    expect(report).toMatch(/a virus was found/);
    expect(report).toContain(envelope.messageId);
    expect(report).not.toContain('EICAR-STANDARD');
  });

  it('quarantines spam when blockSpam is on', async () => {
    const { submit, deliverJobs, deps, abuse } = setup({ blockSpam: true });
    const { envelope } = await submit(await mail({ text: `test ${GTUBE}` }));
    expect((await deps.quarantine.get(envelope.messageId))?.symbols.map((item) => item.name)).toEqual(['GTUBE', 'SPAM_SCORE']);
    expect((await deliverJobs()).map((job) => job.envelope.mailFrom)).toEqual(['']);
    expect(abuse.map((item) => item.kind)).toEqual(['spam']);
  });

  it('delivers spam and counts it when blockSpam is off', async () => {
    const { submit, deliverJobs, deps, abuse } = setup({ blockSpam: false });
    const { envelope } = await submit(await mail({ text: `test ${GTUBE}` }));
    expect(await deps.quarantine.get(envelope.messageId)).toBeUndefined();
    expect((await deliverJobs()).map((job) => job.envelope.messageId)).toEqual([envelope.messageId]);
    expect((await deps.log.get(envelope.messageId))?.events[0]?.detail).toMatchObject({ kind: 'spam', spam: true });
    expect(abuse.map((item) => item.kind)).toEqual(['spam']);
  });

  it('applies the per-user spam threshold', async () => {
    // Built-in rules: SUBJECT_ALL_CAPS (2) + ADVANCE_FEE (4) = 6.
    const text = 'Dear beneficiary, you have won the lottery; send the processing fee and your bank account details.';
    const strict = setup({ spamThreshold: 5 });
    const lenient = setup({ spamThreshold: 10 });
    const raw = await mail({ text, subject: 'URGENT BUSINESS PROPOSAL' });
    await strict.submit(raw);
    expect(await strict.deps.quarantine.list({ tenantId: 'tenant-1' })).toHaveLength(1);
    await lenient.submit(raw);
    expect(await lenient.deps.quarantine.list({ tenantId: 'tenant-1' })).toEqual([]);
  });

  it('quarantines a message with two From headers (FROM_COUNT)', async () => {
    const { submit, deps } = setup();
    const raw = Buffer.concat([Buffer.from('From: ceo@example.com\r\n'), await mail({ text: 'Please pay the invoice today.' })]);
    const { envelope } = await submit(raw);
    expect((await deps.quarantine.get(envelope.messageId))?.symbols).toContainEqual({ name: 'FROM_COUNT', evidence: { fromHeaders: 2 } });
  });

  it('quarantines a message the parser refuses (MIME_PARSE_ERROR) instead of retrying it forever', async () => {
    // 20,000 header lines: over mailparser's header size cap (16k lines), under the MIME caps and clamd's.
    const { submit, deliverJobs, deps } = setup();
    const raw = Buffer.from(`From: alice@example.com\r\nTo: bob@example.org\r\nSubject: many headers\r\n${'X-Filler: a\r\n'.repeat(20_000)}\r\nbody\r\n`);
    const { envelope, result } = await submit(raw);
    expect(result.batchItemFailures).toEqual([]);
    const held = await deps.quarantine.get(envelope.messageId);
    expect(held?.kind).toBe('malformed');
    expect(held?.symbols.map((item) => item.name)).toEqual(['MIME_PARSE_ERROR']);
    expect((await deliverJobs()).map((job) => job.envelope.rcptTo)).toEqual([['alice@example.com']]);
  });

  it('defers when clamd is down: "scan-deferred" in the log, a scan job queued after the first retry delay, nothing delivered', async () => {
    const { submit, deliverJobs, deps } = setup({}, { clamdPort: await freePort() });
    const { envelope, result } = await submit(await mail({ text: 'Hi Bob, the notes.' }));
    expect(result.batchItemFailures).toEqual([]);
    expect(await deliverJobs()).toEqual([]);
    const logged = await deps.log.get(envelope.messageId);
    expect(logged?.message.status).toBe('deferred');
    expect(logged?.events[0]?.event).toBe('scan-deferred');
    expect(logged?.events[0]?.detail).toMatchObject({ attempt: 1, nextAttemptAt: deps.clock.now() + 60_000 });
    expect(JSON.stringify(logged?.events[0]?.detail)).toMatch(/clamd at 127\.0\.0\.1:\d+ could not scan/);
    expect(await deps.queue.depth('scan')).toEqual({ visible: 0, inFlight: 0, delayed: 1 });
    // The queue hands the same record out again: no second retry chain.
    expect((await makeScanHandler(deps)(event(JSON.stringify(envelope)))).batchItemFailures).toEqual([]);
    expect(await deps.queue.depth('scan')).toEqual({ visible: 0, inFlight: 0, delayed: 1 });
    expect((await deps.log.get(envelope.messageId))?.events.filter((item) => item.event === 'scan-deferred')).toHaveLength(1);
  });

  it('moves a deferred message back to queued when its retried scan passes', async () => {
    const { submit, deliverJobs, deps, advance } = setup({}, { clamdPort: await freePort() });
    const { envelope } = await submit(await mail({ text: 'Hi Bob, the notes.' }));
    expect((await deps.log.get(envelope.messageId))?.message.status).toBe('deferred');
    // clamd is back for the retry.
    deps.virusScanner = new ClamdScanner({ host: '127.0.0.1', port: clamd.port }, 5_000);
    advance(60_000);
    const [job] = await deps.queue.receive('scan', { max: 1, visibilityTimeoutSeconds: 30 });
    expect((await makeScanHandler(deps)(event(job?.body ?? ''))).batchItemFailures).toEqual([]);
    const logged = await deps.log.get(envelope.messageId);
    expect(logged?.events.map((item) => item.event)).toEqual(['scan-deferred', 'scanned']);
    expect(logged?.message.status).toBe('queued');
    expect((await deliverJobs()).map((item) => item.envelope.messageId)).toEqual([envelope.messageId]);
  });

  it('retries a scan with clamd down on the delivery retry schedule, then expires the message and sends the sender a DSN', async () => {
    const { submit, deliverJobs, deps, advance } = setup({}, { clamdPort: await freePort(), retrySchedule: [60, 300, 3600] });
    const { envelope } = await submit(await mail({ text: 'Hi Bob, the notes.', subject: 'stranded notes' }));
    const handler = makeScanHandler(deps);
    const takeScanJob = async () => {
      const [job] = await deps.queue.receive('scan', { max: 1, visibilityTimeoutSeconds: 30 });
      if (job) await deps.queue.delete('scan', job.receiptHandle);
      return job;
    };
    // Not before its delay: the queue keeps it hidden.
    advance(59_000);
    expect(await takeScanJob()).toBeUndefined();
    advance(1_000);
    for (const wait of [300_000, 3_600_000]) {
      const job = await takeScanJob();
      expect(job).toBeDefined();
      expect((await handler(event(job?.body ?? ''))).batchItemFailures).toEqual([]);
      // Longer than the queue's 15-minute delay limit: taken in hops, never tried early.
      let waited = 0;
      while (waited < wait) {
        expect(await deliverJobs()).toEqual([]);
        const step = Math.min(900_000, wait - waited);
        advance(step);
        waited += step;
        if (waited < wait) {
          const hop = await takeScanJob();
          expect(hop).toBeDefined();
          await handler(event(hop?.body ?? ''));
        }
      }
    }
    const last = await takeScanJob();
    expect((await handler(event(last?.body ?? ''))).batchItemFailures).toEqual([]);
    expect(await takeScanJob()).toBeUndefined();

    const logged = await deps.log.get(envelope.messageId);
    expect(logged?.message.status).toBe('expired');
    expect(logged?.events.filter((item) => item.event === 'scan-deferred').map((item) => item.detail.attempt)).toEqual([1, 2, 3]);
    expect(logged?.events.map((item) => item.event).slice(-2)).toEqual(['scan-expired', 'dsn-sent']);
    const jobs = await deliverJobs();
    expect(jobs.map((job) => [job.envelope.mailFrom, job.envelope.rcptTo])).toEqual([['', ['alice@example.com']]]);
    const dsn = (await deps.blobs.get(jobs[0]?.envelope.blobKey ?? '')).toString();
    expect(dsn).toContain('Final-Recipient: rfc822; bob@example.org');
    expect(dsn).toContain('Status: 4.4.7');
    expect(dsn).toMatch(/could not be checked for viruses and spam/);
    expect(dsn).toContain('Subject: stranded notes');
    expect(await deps.blobs.exists(envelope.blobKey)).toBe(false);
  });

  it('hands a message whose content is gone to delivery (which bounces it) instead of retrying into the dead-letter queue', async () => {
    const { deps, deliverJobs } = setup();
    const envelope: Envelope = {
      messageId: 'LOST1',
      tenantId: 'tenant-1',
      userId: 'user-1',
      identity: 'alice@example.com',
      mailFrom: 'alice@example.com',
      rcptTo: ['bob@example.org'],
      blobKey: 'messages/LOST1.eml',
      size: 10,
      receivedAt: 0,
      clientIp: '192.0.2.10',
      helo: 'laptop.example.com',
    };
    await deps.log.create({ id: 'LOST1', tenantId: 'tenant-1', userId: 'user-1', identity: envelope.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: 10, subject: null, status: 'queued', receivedAt: 0 });
    const result = await makeScanHandler(deps)(event(JSON.stringify(envelope)));
    expect(result.batchItemFailures).toEqual([]);
    expect(await deliverJobs()).toEqual([{ envelope, attempt: 1, pending: ['bob@example.org'], bounced: [] }]);
    expect((await deps.log.get('LOST1'))?.events.map((item) => [item.event, item.detail.reason])).toEqual([['scan-skipped', 'message content lost']]);
  });

  it('reports a body that is not an envelope as a batch item failure', async () => {
    const { deps } = setup();
    const handler = makeScanHandler(deps);
    expect(await handler(event('{"messageId":"x"}'))).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-1' }] });
    expect(await handler(event('not json'))).toEqual({ batchItemFailures: [{ itemIdentifier: 'sqs-1' }] });
  });

  it('flags a body sent by many identities within the window as a bulk campaign', async () => {
    const { submit, deps } = setup({ spamThreshold: 6 });
    const text = (n: number) =>
      `Hello friend number ${n}, our new investment platform doubles your savings within thirty days. Join thousands of
       happy members who already earn passive income every single week without any risk at all. Register today using
       the personal invitation link below and receive a welcome bonus credited to your account immediately.`;
    deps.config.scanning.bulkIdentities = 3;
    for (let n = 1; n <= 2; n++) await submit(await mail({ text: text(n) }), { userId: `user-${n}`, identity: `u${n}@example.com` });
    expect(await deps.quarantine.list({})).toEqual([]);
    const { envelope } = await submit(await mail({ text: text(3) }), { userId: 'user-3', identity: 'u3@example.com' });
    const held = await deps.quarantine.get(envelope.messageId);
    expect(held?.symbols).toContainEqual({ name: 'BULK_CAMPAIGN', score: 8, evidence: { identities: 3, threshold: 3 } });
    // Learned as spam: the same text from a fourth identity now also matches known spam.
    const fourth = await submit(await mail({ text: text(4) }), { userId: 'user-4', identity: 'u4@example.com' });
    expect((await deps.quarantine.get(fourth.envelope.messageId))?.symbols.map((item) => item.name)).toContain('FUZZY_SPAM_MATCH');
  });

  it('does not put a scanned message back to queued once delivery has logged it delivered', async () => {
    const { submit, deps } = setup();
    // A delivery faster than the scan's last write: done the moment the deliver job is queued.
    const send = deps.queue.send.bind(deps.queue);
    deps.queue.send = async (queue, body, options) => {
      const sent = await send(queue, body, options);
      const job = JSON.parse(body) as { envelope: Envelope };
      await deps.log.addEvent(job.envelope.messageId, 'delivered', {}, 'delivered');
      return sent;
    };
    const { envelope } = await submit(await mail({ text: 'See you at the meeting on Tuesday.' }));
    const logged = await deps.log.get(envelope.messageId);
    expect(logged?.events.map((item) => item.event)).toEqual(['delivered', 'scanned']);
    expect(logged?.message.status).toBe('delivered');
  });

  it('queues nothing when a quarantine release cannot write the log, and the message stays held for another release', async () => {
    const { submit, deliverJobs, deps } = setup();
    const { envelope } = await submit(await mail({ text: `test ${GTUBE}` }));
    await deliverJobs(); // the report
    const failing = Object.create(deps.log) as typeof deps.log;
    failing.addEvent = async () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const qdeps = { quarantine: deps.quarantine, blobs: deps.blobs, queue: deps.queue, log: failing, clock: deps.clock };
    await expect(releaseFromQuarantine(qdeps, envelope.messageId, 'operator')).rejects.toThrow(/disk is full/);
    expect(await deliverJobs()).toEqual([]);
    expect(await deps.quarantine.get(envelope.messageId)).toBeDefined();
    await releaseFromQuarantine({ ...qdeps, log: deps.log }, envelope.messageId, 'operator');
    expect((await deliverJobs()).map((job) => job.envelope.messageId)).toEqual([envelope.messageId]);
  });

  it('releases a held message to delivery, and purges held messages after the retention period', async () => {
    const { submit, deliverJobs, deps, advance } = setup();
    const first = await submit(await mail({ text: `test ${GTUBE}` }));
    const second = await submit(await mail({ text: `again ${GTUBE}` }));
    await deliverJobs(); // the two reports
    // A pipeline faster than the release: the message is delivered the moment its job is queued.
    const delivering = Object.create(deps.queue) as typeof deps.queue;
    delivering.send = async (queue, body, options) => {
      const sent = await deps.queue.send(queue, body, options);
      await deps.log.addEvent(first.envelope.messageId, 'delivered', {}, 'delivered');
      return sent;
    };
    const qdeps = { quarantine: deps.quarantine, blobs: deps.blobs, queue: delivering, log: deps.log, clock: deps.clock };
    await releaseFromQuarantine(qdeps, first.envelope.messageId, 'operator');
    expect((await deliverJobs()).map((job) => job.envelope)).toEqual([first.envelope]);
    // The release's 'queued' came before, not after: it does not undo the delivery.
    const logged = await deps.log.get(first.envelope.messageId);
    expect(logged?.events.slice(-2).map((item) => item.event)).toEqual(['released', 'delivered']);
    expect(logged?.message.status).toBe('delivered');
    expect(await deps.quarantine.get(first.envelope.messageId)).toBeUndefined();
    advance(31 * 86_400_000);
    expect(await purgeQuarantine(qdeps, 30)).toBe(1);
    expect(await deps.quarantine.get(second.envelope.messageId)).toBeUndefined();
    expect(await deps.blobs.exists(second.envelope.blobKey)).toBe(false);
  });
});

describe('scanStartupWarnings', () => {
  it('says loudly when there is no virus scanner and only the built-in rules', () => {
    const spamEngine = new BuiltinSpamRules(parseConfig({}).scanning.builtinRules);
    const warnings = scanStartupWarnings({ spamEngine });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/NOT scanned for viruses.*OUTPOST_CLAMD/);
    expect(warnings[1]).toMatch(/built-in rules.*OUTPOST_RSPAMD_URL|OUTPOST_RSPAMD_URL.*built-in rules/);
  });
});
