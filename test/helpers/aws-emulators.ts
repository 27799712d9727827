// The AWS emulators the adapter tests run against, each started on a free loopback port and
// stopped cleanly: DynamoDB Local (the Java jar shipped in amplify-dynamodb-simulator, one
// in-memory instance per test file, ready in about 2 s), s3rver and local-aws-sqs (both
// in-process, instant). Clients reach them with `emulatorClientConfig(endpoint)`: region
// us-east-1 and fake static credentials, as the emulators accept any.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createSqsServer } from 'local-aws-sqs';
import S3rver from 's3rver';
import { freePort, waitFor } from './net.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Emulator {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Fake static credentials the emulator accepts. */
  credentials: Credentials;
  stop(): Promise<void>;
}

const fakeCredentials: Credentials = { accessKeyId: 'AKIDEMULATOR', secretAccessKey: 'emulator-secret' };
/** s3rver checks signatures against its one built-in key pair. */
const s3rverCredentials: Credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Client options for an emulator: its endpoint, us-east-1, its fake static credentials. */
export function emulatorClientConfig(emulator: Pick<Emulator, 'endpoint' | 'credentials'>): { endpoint: string; region: string; credentials: Credentials } {
  return { endpoint: emulator.endpoint, region: 'us-east-1', credentials: emulator.credentials };
}

const dynamoDir = fileURLToPath(new URL('../../node_modules/amplify-dynamodb-simulator/emulator', import.meta.url));

/** Starts DynamoDB Local in memory and resolves once it answers ListTables. */
export async function startDynamoDbLocal(): Promise<Emulator> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'java',
    [`-Djava.library.path=${join(dynamoDir, 'DynamoDBLocal_lib')}`, '-jar', join(dynamoDir, 'DynamoDBLocal.jar'), '-inMemory', '-sharedDb', '-disableTelemetry', '-port', String(port)],
    { cwd: dynamoDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let exited: string | undefined;
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.on('error', (error: Error) => (exited = `could not start java: ${error.message}`));
  child.on('exit', (code) => (exited ??= `exited with ${code}: ${output.slice(-2000)}`));
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ ...emulatorClientConfig({ endpoint, credentials: fakeCredentials }), maxAttempts: 1 });
  try {
    await waitFor(
      `DynamoDB Local on port ${port}`,
      async () => {
        try {
          await client.send(new ListTablesCommand({}));
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, intervalMs: 100, gone: () => exited },
    );
  } catch (error: unknown) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    credentials: fakeCredentials,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function endpointOf(server: Server): string {
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('emulator is not listening on a TCP port');
  return `http://127.0.0.1:${address.port}`;
}

/** Starts s3rver in this process, storing objects under a temporary folder, with `buckets` created. */
export async function startS3rver(buckets: string[]): Promise<Emulator> {
  const directory = mkdtempSync(join(tmpdir(), 'outpost-s3rver-'));
  const s3rver = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
  const address = await s3rver.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    credentials: s3rverCredentials,
    stop: async () => {
      await s3rver.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Starts local-aws-sqs in this process. */
export async function startLocalSqs(): Promise<Emulator> {
  const server = await createSqsServer({ port: 0, hostname: '127.0.0.1', region: 'us-east-1', emulateQueueCreationLifecycle: false });
  server.on('error', () => undefined);
  return { endpoint: endpointOf(server), credentials: fakeCredentials, stop: () => closeServer(server) };
}
