// The Queue port on SQS. Queues are addressed by name (`scan`, `deliver`, `bounce`, each with a
// dead-letter queue `<name>-dlq`); names resolve to URLs once and are cached. Redrive to the
// dead-letter queue is SQS's own (the queue's RedrivePolicy, maxReceiveCount), so it happens as
// in the SQLite queue: on the receive after the last allowed one. Depth comes from the queue's
// approximate counters, which SQS updates within about a minute.
//
// A deployment passes each queue's URL (the CDK app names queues itself); a dead-letter queue
// whose URL is not given is found through its queue's RedrivePolicy. `redrive` moves dead
// letters back by receiving, re-sending and deleting them (it works on any SQS, emulators too).
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { DeadLetterQueues, Queue, QueueName, ReceivedMessage } from '../../core/ports.js';

export interface SqsQueueOptions {
  client: SQSClient;
  /** Prepended to every queue name, e.g. `outpost-prod-`. */
  prefix?: string;
  /** Known URLs by queue name (`scan`, `deliver`, ...), asked of SQS by name otherwise. */
  urls?: Partial<Record<string, string>>;
}

/** SQS's limit on one ReceiveMessage. */
const MAX_BATCH = 10;

export class SqsQueue implements Queue, DeadLetterQueues {
  private readonly urls = new Map<string, Promise<string>>();

  constructor(private readonly options: SqsQueueOptions) {}

  /** The URL of queue `name` (asked once, then cached; a failed lookup is asked again next time). */
  urlOf(name: string): Promise<string> {
    let url = this.urls.get(name);
    const known = this.options.urls?.[name];
    if (!url && known) {
      url = Promise.resolve(known);
      this.urls.set(name, url);
    }
    const base = name.endsWith('-dlq') ? this.options.urls?.[name.slice(0, -'-dlq'.length)] : undefined;
    if (!url && base) {
      url = this.deadLetterUrlOf(base);
      url.catch(() => this.urls.delete(name));
      this.urls.set(name, url);
    }
    if (!url) {
      url = this.options.client.send(new GetQueueUrlCommand({ QueueName: `${this.options.prefix ?? ''}${name}` })).then((result) => {
        if (!result.QueueUrl) throw new Error(`queue ${name} has no URL`);
        return result.QueueUrl;
      });
      url.catch(() => this.urls.delete(name));
      this.urls.set(name, url);
    }
    return url;
  }

  /** The dead-letter queue's URL, from the RedrivePolicy of the queue at `queueUrl`. */
  private async deadLetterUrlOf(queueUrl: string): Promise<string> {
    const attributes = await this.options.client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }));
    const policy: unknown = JSON.parse(attributes.Attributes?.RedrivePolicy ?? '{}');
    const arn = typeof policy === 'object' && policy !== null ? Reflect.get(policy, 'deadLetterTargetArn') : undefined;
    // arn:aws:sqs:<region>:<account>:<name>
    const parts = typeof arn === 'string' ? arn.split(':') : [];
    const [account, name] = [parts[4], parts[5]];
    if (!account || !name) throw new Error(`queue ${queueUrl} has no dead-letter queue in its RedrivePolicy`);
    const result = await this.options.client.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }));
    if (!result.QueueUrl) throw new Error(`dead-letter queue ${name} has no URL`);
    return result.QueueUrl;
  }

  async redrive(queue: QueueName): Promise<number> {
    let moved = 0;
    for (;;) {
      const batch = await this.receive(`${queue}-dlq`, { max: MAX_BATCH, visibilityTimeoutSeconds: 60 });
      if (batch.length === 0) return moved;
      for (const message of batch) {
        // Sent again before the dead letter is deleted: a failure in between leaves a copy, never none.
        await this.send(queue, message.body);
        await this.delete(`${queue}-dlq`, message.receiptHandle);
        moved += 1;
      }
    }
  }

  async send(queue: string, body: string, options: { delaySeconds?: number } = {}): Promise<string> {
    const result = await this.options.client.send(
      new SendMessageCommand({ QueueUrl: await this.urlOf(queue), MessageBody: body, DelaySeconds: Math.max(0, Math.ceil(options.delaySeconds ?? 0)) }),
    );
    if (!result.MessageId) throw new Error(`SQS gave no message id for a message to ${queue}`);
    return result.MessageId;
  }

  async receive(queue: string, options: { max: number; visibilityTimeoutSeconds: number }): Promise<ReceivedMessage[]> {
    const result = await this.options.client.send(
      new ReceiveMessageCommand({
        QueueUrl: await this.urlOf(queue),
        MaxNumberOfMessages: Math.min(MAX_BATCH, Math.max(1, options.max)),
        VisibilityTimeout: options.visibilityTimeoutSeconds,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'ApproximateFirstReceiveTimestamp'],
        // The deprecated spelling as well: some emulators know only it.
        AttributeNames: ['All'],
      }),
    );
    return (result.Messages ?? []).flatMap((message) => {
      if (!message.MessageId || !message.ReceiptHandle || message.Body === undefined) return [];
      const attributes = message.Attributes ?? {};
      const sentAt = Number(attributes.SentTimestamp ?? 0);
      return [
        {
          messageId: message.MessageId,
          receiptHandle: message.ReceiptHandle,
          body: message.Body,
          receiveCount: Number(attributes.ApproximateReceiveCount ?? 1) || 1,
          sentAt,
          firstReceivedAt: Number(attributes.ApproximateFirstReceiveTimestamp ?? sentAt) || sentAt,
        },
      ];
    });
  }

  async delete(queue: string, receiptHandle: string): Promise<void> {
    try {
      await this.options.client.send(new DeleteMessageCommand({ QueueUrl: await this.urlOf(queue), ReceiptHandle: receiptHandle }));
    } catch (error: unknown) {
      // A handle that is no longer valid deletes nothing, as in the SQLite queue.
      if (error instanceof Error && /ReceiptHandleIsInvalid|InvalidParameterValue/.test(error.name)) return;
      throw error;
    }
  }

  async changeVisibility(queue: string, receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void> {
    await this.options.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: await this.urlOf(queue), ReceiptHandle: receiptHandle, VisibilityTimeout: visibilityTimeoutSeconds }));
  }

  async depth(queue: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
    const result = await this.options.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: await this.urlOf(queue),
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    const attributes = result.Attributes ?? {};
    const count = (name: keyof typeof attributes): number => Number(attributes[name] ?? 0) || 0;
    return {
      visible: count('ApproximateNumberOfMessages'),
      inFlight: count('ApproximateNumberOfMessagesNotVisible'),
      delayed: count('ApproximateNumberOfMessagesDelayed'),
    };
  }
}

/**
 * Creates `name` and its dead-letter queue `<name>-dlq` with a redrive after `maxReceives`
 * receives (tests; the CDK app declares the same pair). Returns the queue's URL.
 */
export async function createQueueWithDeadLetter(client: SQSClient, name: string, options: { maxReceives: number; visibilityTimeoutSeconds?: number }): Promise<string> {
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq`, Attributes: { MessageRetentionPeriod: '1209600' } }));
  if (!dlq.QueueUrl) throw new Error(`no URL for ${name}-dlq`);
  const attributes = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }));
  const arn = attributes.Attributes?.QueueArn;
  if (!arn) throw new Error(`no ARN for ${name}-dlq`);
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 300),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: options.maxReceives }),
      },
    }),
  );
  if (!queue.QueueUrl) throw new Error(`no URL for ${name}`);
  return queue.QueueUrl;
}
