// The SQS event shapes the pipeline handlers take, in both deployments: Lambda gets them from
// the SQS event source; the single node's poller builds them from its SQLite queue.

export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: {
    ApproximateReceiveCount: string;
    SentTimestamp: string;
    ApproximateFirstReceiveTimestamp: string;
  };
  eventSource: 'aws:sqs';
  eventSourceARN: string;
}

export interface SqsEvent {
  Records: SqsRecord[];
}

/** The partial batch response: records listed here are retried, the rest are deleted. */
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

export type SqsHandler = (event: SqsEvent) => Promise<SqsBatchResponse>;

/**
 * Runs `handleRecord` for every record of the batch at once (records are independent messages;
 * a batch is at most 10 of them) and reports the ones that threw as batch item failures, so one
 * bad message does not make the whole batch retry.
 */
export function perRecord(
  handleRecord: (record: SqsRecord) => Promise<void>,
  onError: (record: SqsRecord, error: unknown) => void,
): SqsHandler {
  return async (event) => {
    const outcomes = await Promise.allSettled(event.Records.map((record) => handleRecord(record)));
    const failures: SqsBatchResponse['batchItemFailures'] = [];
    outcomes.forEach((outcome, index) => {
      const record = event.Records[index];
      if (outcome.status === 'rejected' && record) {
        onError(record, outcome.reason);
        failures.push({ itemIdentifier: record.messageId });
      }
    });
    return { batchItemFailures: failures };
  };
}
