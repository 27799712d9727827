// The AWS SDK clients of the adapters, built one way: a region, and optionally an endpoint and
// static credentials (the emulators in tests; on AWS both come from the environment and the
// execution role). S3 requests carry a checksum only when an operation requires one: with
// streamed bodies the SDK's default (a trailing checksum in aws-chunked framing) is stored
// verbatim by S3-compatible servers that do not speak that framing.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface AwsClientOptions {
  region: string;
  /** e.g. http://127.0.0.1:8000 for an emulator; unset on AWS. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Attempts per request, retries included (the SDK's default is 3). */
  maxAttempts?: number;
}

export function dynamoDbDocumentClient(options: AwsClientOptions): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(options), { marshallOptions: { removeUndefinedValues: true } });
}

/** `forcePathStyle` addresses buckets as http://host/bucket/key (s3rver and most emulators). */
export function s3Client(options: AwsClientOptions & { forcePathStyle?: boolean }): S3Client {
  return new S3Client({ ...options, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

export function sqsClient(options: AwsClientOptions): SQSClient {
  return new SQSClient(options);
}

export function kmsClient(options: AwsClientOptions): KMSClient {
  return new KMSClient(options);
}

export function sesClient(options: AwsClientOptions): SESv2Client {
  return new SESv2Client(options);
}

export function secretsManagerClient(options: AwsClientOptions): SecretsManagerClient {
  return new SecretsManagerClient(options);
}
