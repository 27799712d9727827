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
 * Runs `handleRecord` for each record and reports the ones that threw as batch item failures,
 * so one bad message does not make the whole batch retry.
 */
export function perRecord(
  handleRecord: (record: SqsRecord) => Promise<void>,
  onError: (record: SqsRecord, error: unknown) => void,
): SqsHandler {
  return async (event) => {
    const failures: SqsBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      try {
        await handleRecord(record);
      } catch (error: unknown) {
        onError(record, error);
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  };
}
