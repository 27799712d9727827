// The SQS queue passes the queue contract against local-aws-sqs, in real time (visibility
// timeouts and delays of one second), each test on a queue pair of its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { sqsClient } from '../../../adapters/aws/clients.js';
import { createQueueWithDeadLetter, SqsQueue } from '../../../adapters/aws/sqs-queue.js';
import { emulatorClientConfig, startLocalSqs, type Emulator } from '../../helpers/aws-emulators.js';
import { queueContract } from '../../core/queue.contract.js';

let sqs: Emulator;
let client: SQSClient;
let queues = 0;

beforeAll(async () => {
  sqs = await startLocalSqs();
  client = sqsClient(emulatorClientConfig(sqs));
});

afterAll(async () => {
  client?.destroy();
  await sqs?.stop();
});

queueContract('SQS (local-aws-sqs)', async ({ maxReceives }) => {
  const name = `q${++queues}`;
  await createQueueWithDeadLetter(client, `outpost-${name}`, { maxReceives });
  return {
    queue: new SqsQueue({ client, prefix: 'outpost-' }),
    name,
    // A little over the time asked for: SQS's clock runs in whole milliseconds of its own.
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms + 150)),
    close: () => undefined,
  };
}, { staleReceiptHandleDeletes: true });

describe('SqsQueue', () => {
  it('resolves a queue URL by name once and names a queue that does not exist', async () => {
    const queue = new SqsQueue({ client, prefix: 'outpost-' });
    await createQueueWithDeadLetter(client, 'outpost-named', { maxReceives: 3 });
    expect(await queue.urlOf('named')).toMatch(/\/outpost-named$/);
    expect(await queue.urlOf('named-dlq')).toMatch(/\/outpost-named-dlq$/);
    await expect(queue.send('missing', 'x')).rejects.toThrow();
  });
});
