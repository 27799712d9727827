// What every Lambda entry shares: a Powertools logger and EMF metrics (namespace `Outpost`,
// dimension `service`; tenant and user go in as metadata, never as dimensions, which would
// make a metric per user), middy to wire them, and for queue consumers the partial batch
// response and idempotency: a record whose job already ran (SQS delivers at least once) is
// acknowledged without running again.
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { SqsEvent, SqsHandler } from '../core/sqs-event.js';
import { errorMessage } from '../core/log.js';
import type { EntryMetrics } from './aws-stores.js';
import { emfRecorder } from './emf-recorder.js';
import { METRIC, METRICS_NAMESPACE } from './metric-names.js';

/** An environment variable the deployment must set; read once, at cold start. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set (the CDK app sets it)`);
  return value;
}

export interface Telemetry {
  logger: Logger;
  metrics: Metrics;
  entryMetrics: EntryMetrics;
}

export function telemetry(service: string): Telemetry {
  const logger = new Logger({ serviceName: service });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service });
  const entryMetrics: EntryMetrics = {
    ...emfRecorder(metrics),
    locked: (userId, tenantId) => countFor(metrics, METRIC.locksApplied, { tenantId, userId }),
  };
  return { logger, metrics, entryMetrics };
}

/** One EMF line for one message, so that its tenant and user travel as metadata with it. */
export function countFor(metrics: Metrics, name: string, who: { tenantId?: string; userId?: string; messageId?: string }): void {
  const single = metrics.singleMetric();
  for (const [key, value] of Object.entries(who)) if (value) single.addMetadata(key, value);
  single.addMetric(name, MetricUnit.Count, 1);
}

/** What a queue record is about, read from its body before any store is touched. */
export interface RecordIdentity {
  /** The idempotency key: the message id and the attempt (or the event id). */
  key: string;
  /** False for a record that must run even if the same key ran (e.g. a job that only waits longer). */
  idempotent: boolean;
  tenantId?: string;
  userId?: string;
  messageId?: string;
}

export class MalformedRecordError extends Error {
  override name = 'MalformedRecordError';
}

export interface QueueEntryOptions {
  service: string;
  /** Reads the record's identity; throws MalformedRecordError for a body that is not a job. */
  identify(body: string): RecordIdentity;
  /** Builds the handler of the use case, once per container (the stores, the engines). */
  build(telemetry: Telemetry): Promise<SqsHandler>;
  /** Metric counted for each record handled. */
  handledMetric: string;
  /** Metric counted for each record that failed (besides RecordFailures). */
  failedMetric?: string;
  /** How long a completed key is remembered. Default: 24 hours. */
  idempotencyHours?: number;
}

/**
 * A Lambda handler for an SQS queue: each record is checked, then handed alone to the use case's
 * handler (built on the first record), idempotently per key; records that fail are returned as
 * batch item failures and retried by SQS, then land in the dead-letter queue.
 */
export function queueEntry(options: QueueEntryOptions): middy.MiddyfiedHandler<SQSEvent, SQSBatchResponse, Error, Context> {
  const tools = telemetry(options.service);
  const { logger, metrics } = tools;
  const processor = new BatchProcessor(EventType.SQS);
  const idempotencyConfig = new IdempotencyConfig({ eventKeyJmesPath: 'key', expiresAfterSeconds: (options.idempotencyHours ?? 24) * 3600 });
  const persistenceStore = new DynamoDBPersistenceLayer({ tableName: requiredEnv('OUTPOST_IDEMPOTENCY_TABLE') });

  const useCase = lazily(() => options.build(tools));

  const runRecord = async (input: { key: string; record: SQSRecord }): Promise<{ handled: true }> => {
    const handler = await useCase();
    const event: SqsEvent = { Records: [toCoreRecord(input.record)] };
    const result = await handler(event);
    if (result.batchItemFailures.length > 0) throw new Error(`record ${input.record.messageId} failed; it will be retried`);
    return { handled: true };
  };
  // A fixed prefix: the default is the function's name, which minification changes at every build.
  const runOnce = makeIdempotent(runRecord, { persistenceStore, config: idempotencyConfig, keyPrefix: `outpost-${options.service}` });

  const handleRecord = async (record: SQSRecord): Promise<void> => {
    let identity: RecordIdentity | undefined;
    try {
      identity = options.identify(record.body);
      await (identity.idempotent ? runOnce({ key: identity.key, record }) : runRecord({ key: identity.key, record }));
      countFor(metrics, options.handledMetric, identity);
    } catch (error: unknown) {
      const who = identity ? { messageId: identity.messageId, tenantId: identity.tenantId, userId: identity.userId } : {};
      logger.error('record failed; it will be retried', { sqsMessageId: record.messageId, receiveCount: record.attributes.ApproximateReceiveCount, ...who, error: errorMessage(error) });
      countFor(metrics, METRIC.recordFailures, who);
      if (options.failedMetric) countFor(metrics, options.failedMetric, who);
      throw error;
    }
  };

  return middy(async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    idempotencyConfig.registerLambdaContext(context);
    // A batch whose records all failed is answered like any other (every record listed), not
    // thrown: the same answer the single node's poller gets, and no Lambda error for bad mail.
    return processPartialResponse(event, handleRecord, processor, { context, throwOnFullBatchFailure: false });
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

/** The record as the core's handlers take it (the same shape the single node's poller builds). */
function toCoreRecord(record: SQSRecord): SqsEvent['Records'][number] {
  return {
    messageId: record.messageId,
    receiptHandle: record.receiptHandle,
    body: record.body,
    attributes: {
      ApproximateReceiveCount: record.attributes.ApproximateReceiveCount,
      SentTimestamp: record.attributes.SentTimestamp,
      ApproximateFirstReceiveTimestamp: record.attributes.ApproximateFirstReceiveTimestamp,
    },
    eventSource: 'aws:sqs',
    eventSourceARN: record.eventSourceARN,
  };
}

/** Builds a thing on first use, once; a failed build is tried again on the next use (a transient failure does not stick). */
export function lazily<T>(build: () => Promise<T>): () => Promise<T> {
  let built: Promise<T> | undefined;
  return () => {
    built ??= build().catch((error: unknown) => {
      built = undefined;
      throw error;
    });
    return built;
  };
}

/** Parses a record body as JSON, or says clearly that it is not. */
export function jsonBody(body: string, what: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error: unknown) {
    throw new MalformedRecordError(`${what}: the record body is not JSON (${errorMessage(error)})`);
  }
}
