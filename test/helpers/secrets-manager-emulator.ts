// A Secrets Manager for tests: GetSecretValue over the service's JSON protocol (POST /, header
// x-amz-target: secretsmanager.GetSecretValue) from a map of secrets, on a free loopback port,
// so that the real SDK client reads what the CDK app's secrets would hold. Unknown ids get
// ResourceNotFoundException, as AWS answers.
import { createServer } from 'node:http';

export interface SecretsManagerEmulator {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** How often each secret was read. */
  reads: Map<string, number>;
  stop(): Promise<void>;
}

export async function startSecretsManagerEmulator(secrets: Record<string, string>): Promise<SecretsManagerEmulator> {
  const reads = new Map<string, number>();
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const answer = (status: number, json: unknown, errorType?: string): void => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
        response.end(JSON.stringify(json));
      };
      if (request.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') return answer(400, { message: 'only GetSecretValue' }, 'InvalidRequestException');
      let secretId = '';
      try {
        const parsed: unknown = JSON.parse(body);
        if (typeof parsed === 'object' && parsed !== null && 'SecretId' in parsed && typeof parsed.SecretId === 'string') secretId = parsed.SecretId;
      } catch {
        return answer(400, { message: 'body is not JSON' }, 'InvalidRequestException');
      }
      const value = secrets[secretId];
      if (value === undefined) return answer(400, { __type: 'ResourceNotFoundException', message: `no secret ${secretId}` }, 'ResourceNotFoundException');
      reads.set(secretId, (reads.get(secretId) ?? 0) + 1);
      return answer(200, { ARN: secretId, Name: secretId, SecretString: value, VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 });
    });
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'AKIDEMULATOR', secretAccessKey: 'emulator-secret' },
    reads,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
