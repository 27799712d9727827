// Where messages and state live: one KMS key for everything at rest, the message bucket, the
// pipeline queues (each with its dead-letter queue), the DynamoDB tables and the secrets.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Access } from '../access.js';
import { TABLES, type TableName } from '../tables.js';

/** The pipeline's queues: the names the code uses (core/ports.ts `QueueName`) plus SES events. */
export const QUEUE_NAMES = ['scan', 'deliver', 'bounce', 'ses-events'] as const;
export type PipelineQueueName = (typeof QUEUE_NAMES)[number];

export interface PipelineQueue {
  readonly queue: sqs.Queue;
  readonly deadLetters: sqs.Queue;
}

export interface StorageProps {
  /**
   * Timeout of the consumer of each queue. The visibility timeout is six times this (AWS's
   * guidance for Lambda event sources, so a batch retried by Lambda is not received twice).
   * Default: 60 seconds for every queue.
   */
  readonly consumerTimeouts?: Partial<Record<PipelineQueueName, Duration>>;
  /** Receives before a message moves to its dead-letter queue. Default: 5. */
  readonly maxReceiveCount?: number;
  /** Days message content (`messages/`) is kept. Default: 30. */
  readonly messageRetentionDays?: number;
  /** Days bounces (`bounces/`) and held-message reports (`reports/`) are kept. Default: 14. */
  readonly reportRetentionDays?: number;
  /** What happens to data on stack deletion. Default: RETAIN (mail and logs are evidence). */
  readonly removalPolicy?: RemovalPolicy;
}

export class Storage extends Construct {
  readonly key: kms.Key;
  readonly bucket: s3.Bucket;
  /** Server access logs of the message bucket and the load balancer's access logs (SSE-S3: the log delivery services cannot use KMS). */
  readonly accessLogs: s3.Bucket;
  readonly queues: Record<PipelineQueueName, PipelineQueue>;
  readonly tables: Record<TableName, dynamodb.Table>;
  /** Powertools idempotency records of the Lambdas (key `id`, TTL `expiration`). */
  readonly idempotency: dynamodb.Table;
  /** The operator's API token (generated). */
  readonly operatorToken: secretsmanager.Secret;
  /** The ingress's TLS key and certificate, PEM, as JSON `{ "key": ..., "cert": ... }` (filled in by the operator). */
  readonly tlsCertificate: secretsmanager.Secret;
  /** Credentials for the smarthost, JSON `{ "username": ..., "password": ... }` (filled in by the operator). */
  readonly relayCredentials: secretsmanager.Secret;
  /** Tables are named `<tablePrefix>-<table>`. */
  readonly tablePrefix: string;

  constructor(scope: Construct, id: string, props: StorageProps = {}) {
    super(scope, id);
    this.tablePrefix = Stack.of(this).stackName;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.key = new kms.Key(this, 'Key', { enableKeyRotation: true, description: 'Outpost: message content, queues, tables and secrets at rest', removalPolicy });

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(365) }],
      removalPolicy,
    });

    const messageDays = props.messageRetentionDays ?? 30;
    const reportDays = props.reportRetentionDays ?? 14;
    this.bucket = new s3.Bucket(this, 'Messages', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // One KMS request per object instead of one per read and write.
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'messages-bucket/',
      lifecycleRules: [
        // Accepted messages, delivered or held in quarantine: the quarantine hold ends with them,
        // so this is also how long a held message can still be released.
        { id: 'processed-and-quarantined-messages', prefix: 'messages/', expiration: Duration.days(messageDays) },
        { id: 'bounces', prefix: 'bounces/', expiration: Duration.days(reportDays) },
        { id: 'held-message-reports', prefix: 'reports/', expiration: Duration.days(reportDays) },
        { id: 'incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy,
    });

    const timeouts = props.consumerTimeouts ?? {};
    const queues: Partial<Record<PipelineQueueName, PipelineQueue>> = {};
    for (const name of QUEUE_NAMES) {
      const consumerTimeout = timeouts[name] ?? Duration.seconds(60);
      const deadLetters = new sqs.Queue(this, `${name}-dlq`, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.key,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
      const queue = new sqs.Queue(this, `${name}-queue`, {
        encryption: sqs.QueueEncryption.KMS,
        encryptionMasterKey: this.key,
        dataKeyReuse: Duration.hours(1),
        enforceSSL: true,
        visibilityTimeout: Duration.seconds(consumerTimeout.toSeconds() * 6),
        retentionPeriod: Duration.days(4),
        deadLetterQueue: { queue: deadLetters, maxReceiveCount: props.maxReceiveCount ?? 5 },
      });
      queues[name] = { queue, deadLetters };
    }
    this.queues = queues as Record<PipelineQueueName, PipelineQueue>;

    // `Table`, not `TableV2`: TableV2 synthesizes AWS::DynamoDB::GlobalTable, a global table
    // even with one replica, whose replica settings, streams and limits differ from a plain
    // table's; nothing here needs a second region, and a plain AWS::DynamoDB::Table is what the
    // adapters are tested against on DynamoDB Local.
    const tables: Partial<Record<TableName, dynamodb.Table>> = {};
    for (const [name, definition] of Object.entries(TABLES) as Array<[TableName, (typeof TABLES)[TableName]]>) {
      const table = new dynamodb.Table(this, `${name}-table`, {
        // `<prefix>-<table>`: the adapters find every table from OUTPOST_TABLE_PREFIX.
        tableName: `${this.tablePrefix}-${name}`,
        partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
        sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: this.key,
        ...('ttlAttribute' in definition ? { timeToLiveAttribute: definition.ttlAttribute } : {}),
        deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
        removalPolicy,
      });
      for (const index of definition.indexes) {
        table.addGlobalSecondaryIndex({
          indexName: index.name,
          partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
          sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      tables[name] = table;
    }
    this.tables = tables as Record<TableName, dynamodb.Table>;

    this.idempotency = new dynamodb.Table(this, 'idempotency-table', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      timeToLiveAttribute: 'expiration',
      // Idempotency records are disposable: they only stop a job from running twice within hours.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.operatorToken = new secretsmanager.Secret(this, 'OperatorToken', {
      description: 'Outpost operator API token',
      encryptionKey: this.key,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      removalPolicy,
    });
    this.tlsCertificate = new secretsmanager.Secret(this, 'TlsCertificate', {
      description: 'Outpost ingress TLS key and certificate (PEM), JSON {"key": ..., "cert": ...}',
      encryptionKey: this.key,
      removalPolicy,
    });
    this.relayCredentials = new secretsmanager.Secret(this, 'RelayCredentials', {
      description: 'Outpost smarthost credentials, JSON {"username": ..., "password": ...}',
      encryptionKey: this.key,
      removalPolicy,
    });
  }

  /** What every entry (Lambda or container) is told about the resources, as environment variables. */
  environment(): Record<string, string> {
    return {
      OUTPOST_BUCKET: this.bucket.bucketName,
      OUTPOST_KMS_KEY_ID: this.key.keyId,
      OUTPOST_TABLE_PREFIX: this.tablePrefix,
      OUTPOST_IDEMPOTENCY_TABLE: this.idempotency.tableName,
      OUTPOST_SCAN_QUEUE_URL: this.queues.scan.queue.queueUrl,
      OUTPOST_DELIVER_QUEUE_URL: this.queues.deliver.queue.queueUrl,
      OUTPOST_BOUNCE_QUEUE_URL: this.queues.bounce.queue.queueUrl,
      OUTPOST_SES_EVENTS_QUEUE_URL: this.queues['ses-events'].queue.queueUrl,
    };
  }

  /**
   * Exactly what `access` names (lib/access.ts): read or read-write per table, the bucket's
   * read, put and delete, sending per queue; and the key for the envelope encryption of DKIM and
   * BATV keys (the grants on encrypted resources add what those need).
   */
  grant(grantee: iam.IGrantable, access: Access): void {
    for (const [name, level] of Object.entries(access.tables)) {
      const table = name === 'idempotency' ? this.idempotency : this.tables[name as TableName];
      if (level === 'readWrite') table.grantReadWriteData(grantee);
      else table.grantReadData(grantee);
    }
    if (access.batvKeys && access.tables.config !== 'readWrite') {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:ConditionCheckItem'],
          resources: [this.tables.config.tableArn],
          // Only items whose partition key is BATV: the deployment's BATV keys, nothing of a tenant.
          conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['BATV'] } },
        }),
      );
    }
    if (access.bucket.read) this.bucket.grantRead(grantee);
    if (access.bucket.put) this.bucket.grantPut(grantee);
    if (access.bucket.delete) this.bucket.grantDelete(grantee);
    for (const name of access.sendsTo) this.queues[name].queue.grantSendMessages(grantee);
    if (access.redrivesDeadLetters) for (const { deadLetters } of Object.values(this.queues)) deadLetters.grantConsumeMessages(grantee);
    this.key.grantEncryptDecrypt(grantee);
  }

  /** Everything an entry of the pipeline reads and writes: content, queues, tables, the key. */
  grantPipelineAccess(grantee: iam.IGrantable): void {
    this.bucket.grantReadWrite(grantee);
    for (const { queue } of Object.values(this.queues)) {
      queue.grantSendMessages(grantee);
      queue.grantConsumeMessages(grantee);
    }
    for (const table of Object.values(this.tables)) table.grantReadWriteData(grantee);
    this.idempotency.grantReadWriteData(grantee);
    this.key.grantEncryptDecrypt(grantee);
  }
}
