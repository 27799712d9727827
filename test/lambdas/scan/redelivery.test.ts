// The scan queue is at-least-once: SQS may hand a job over twice, and on the single node a crash
// between queueing the deliver job and deleting the scan job hands it over again at restart. The
// message must still be delivered once: the second scan of a message already scanned and handed
// to delivery queues nothing.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteFingerprintStore } from '../../../adapters/local/fingerprint-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQuarantineStore } from '../../../adapters/local/quarantine-store.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import { parseConfig } from '../../../core/config.js';
import type { Envelope, Logger } from '../../../core/ports.js';
import { BuiltinSpamRules } from '../../../core/scan/builtin-rules.js';
import { effectiveSettings } from '../../../core/settings.js';
import type { SqsEvent } from '../../../core/sqs-event.js';
import { makeScanHandler } from '../../../lambdas/scan/handler.js';

const silent: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

describe('scan handler, job handed over twice', () => {
  it('queues one deliver job for a message scanned twice', async () => {
    const db = openDatabase(':memory:');
    const clock = { now: () => 1_800_000_000_000 };
    const dir = mkdtempSync(join(tmpdir(), 'outpost-rescan-'));
    const config = parseConfig({ dataDir: dir, hostname: 'relay.example.net' });
    const queue = new SqliteQueue(db, { maxReceives: 5, clock });
    const log = new SqliteMessageLog(db, clock);
    const blobs = new FsBlobStore(join(dir, 'blobs'));
    const handler = makeScanHandler({
      blobs,
      queue,
      log,
      config,
      logger: silent,
      clock,
      spamEngine: new BuiltinSpamRules(config.scanning.builtinRules),
      fingerprints: new SqliteFingerprintStore(db),
      quarantine: new SqliteQuarantineStore(db),
      settingsFor: async () => effectiveSettings({}),
    });
    const raw = Buffer.from('From: alice@example.com\r\nTo: bob@example.org\r\nSubject: notes\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <n1@example.com>\r\n\r\nThe notes.\r\n');
    const envelope: Envelope = {
      messageId: 'MSG1', tenantId: 't', userId: 'u', identity: 'alice@example.com', mailFrom: 'alice@example.com', rcptTo: ['bob@example.org'],
      blobKey: 'messages/MSG1.eml', size: raw.length, receivedAt: clock.now(), clientIp: '192.0.2.10', helo: 'laptop.example.com',
    };
    await blobs.put(envelope.blobKey, raw);
    await log.create({ id: 'MSG1', tenantId: 't', userId: 'u', identity: envelope.identity, mailFrom: envelope.mailFrom, rcptTo: envelope.rcptTo, size: raw.length, subject: null, status: 'queued', receivedAt: clock.now() });
    const event = (receiveCount: number): SqsEvent => ({
      Records: [{
        messageId: 'sqs-1', receiptHandle: `r-${receiveCount}`, body: JSON.stringify(envelope), eventSource: 'aws:sqs', eventSourceARN: 'arn:outpost:sqs:local:scan',
        attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: '0', ApproximateFirstReceiveTimestamp: '0' },
      }],
    });

    expect((await handler(event(1))).batchItemFailures).toEqual([]);
    expect((await handler(event(2))).batchItemFailures).toEqual([]);
    expect((await queue.depth('deliver')).visible).toBe(1);
    expect((await log.get('MSG1'))?.events.filter((item) => item.event === 'scanned')).toHaveLength(1);
  });
});
