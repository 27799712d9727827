// What the Lambda entries read from a record before any store is touched: the idempotency key
// (message id and attempt) and whether the record may be skipped as already done.
import { beforeAll, describe, expect, it } from 'vitest';
import { MalformedRecordError } from '../../lambdas/entry.js';

// The entry modules read their environment when loaded, as on Lambda: set it, then load them.
let identifyScanJob: typeof import('../../lambdas/scan/index.js').identifyScanJob;
let identifyDeliverJob: typeof import('../../lambdas/deliver/index.js').identifyDeliverJob;
let identifyBounceRecord: typeof import('../../lambdas/bounce/index.js').identifyBounceRecord;
beforeAll(async () => {
  Object.assign(process.env, { OUTPOST_IDEMPOTENCY_TABLE: 'Outpost-idempotency', AWS_REGION: 'eu-west-1', POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
  ({ identifyScanJob } = await import('../../lambdas/scan/index.js'));
  ({ identifyDeliverJob } = await import('../../lambdas/deliver/index.js'));
  ({ identifyBounceRecord } = await import('../../lambdas/bounce/index.js'));
});

const envelope = {
  messageId: 'M1A2B3C4', tenantId: 't1', userId: 'u1', identity: 'alice@example.org', mailFrom: 'alice@example.org',
  rcptTo: ['bob@example.net'], blobKey: 'messages/2026-12-01/M1A2B3C4.eml', size: 512, receivedAt: 1764633600000, clientIp: '192.0.2.10', helo: 'client.example.org',
};
const NOW = 1_764_633_600_000;

describe('idempotency keys of the entries', () => {
  it('scan: one key per message, with tenant and user for the metrics metadata', () => {
    expect(identifyScanJob(JSON.stringify(envelope))).toEqual({ key: 'M1A2B3C4#scan', idempotent: true, messageId: 'M1A2B3C4', tenantId: 't1', userId: 'u1' });
  });

  it('deliver: one key per message and attempt, so attempt 2 runs after attempt 1 completed', () => {
    const first = identifyDeliverJob(JSON.stringify({ envelope, attempt: 1, pending: envelope.rcptTo }), NOW);
    const second = identifyDeliverJob(JSON.stringify({ envelope, attempt: 2, pending: envelope.rcptTo, notBefore: NOW - 5 }), NOW);
    expect(first).toMatchObject({ key: 'M1A2B3C4#1', idempotent: true });
    expect(second).toMatchObject({ key: 'M1A2B3C4#2', idempotent: true });
  });

  it('deliver: a job received before its time only waits again, outside idempotency (else its next hop would look done)', () => {
    const early = identifyDeliverJob(JSON.stringify({ envelope, attempt: 3, pending: envelope.rcptTo, notBefore: NOW + 3_600_000 }), NOW);
    expect(early).toMatchObject({ key: 'M1A2B3C4#3', idempotent: false });
  });

  it('bounce: SES events by event id, bounces by their own queue id', () => {
    const sesEvent = { id: 'ev-9', 'detail-type': 'Email Bounced', source: 'aws.ses', time: '2026-12-01T00:00:00Z', detail: { eventType: 'Bounce', mail: { messageId: 'x' } } };
    expect(identifyBounceRecord(JSON.stringify(sesEvent))).toEqual({ key: 'ses#ev-9', idempotent: true });
    expect(identifyBounceRecord(JSON.stringify(envelope))).toMatchObject({ key: 'M1A2B3C4#bounce', idempotent: true });
  });

  it('refuses bodies that are not jobs with MalformedRecordError naming what is wrong', () => {
    expect(() => identifyScanJob('{')).toThrow(MalformedRecordError);
    expect(() => identifyScanJob(JSON.stringify({ ...envelope, rcptTo: 'bob' }))).toThrow(/rcptTo/);
    expect(() => identifyDeliverJob(JSON.stringify({ envelope, attempt: 0, pending: [] }))).toThrow(/attempt/);
    expect(() => identifyBounceRecord(JSON.stringify({ source: 'aws.ses' }))).toThrow(/neither a bounce envelope nor an SES event/);
  });
});
