// SES for tests, two ways. aws-ses-v2-local (in-process, on a free port) checks the wiring of a
// real SESv2 client: the request it accepts, the message id it returns, the parsed mail in its
// store; it keeps no raw bytes. The capture server below records each SendEmail request as sent,
// the raw message bytes decoded from Content.Raw.Data, so a test can compare them byte for byte,
// and can be told to answer the next calls with an SES error.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sesLocal from 'aws-ses-v2-local';

export interface SesEndpoint {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

const credentials = { accessKeyId: 'AKIDEMULATOR', secretAccessKey: 'emulator-secret' };

function stopServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? (address satisfies AddressInfo).port : 0;
}

/** One email as aws-ses-v2-local's /store reports it. */
export interface SesLocalEmail {
  messageId: string;
  from: string;
  subject: string;
  destination: { to: string[]; cc: string[]; bcc: string[] };
}

export async function startSesLocal(): Promise<SesEndpoint & { emails(): Promise<SesLocalEmail[]> }> {
  // The package is CommonJS with `exports.default`: under ESM the default import is the exports object.
  const start: unknown = typeof sesLocal === 'function' ? sesLocal : Reflect.get(sesLocal, 'default');
  if (typeof start !== 'function') throw new Error('aws-ses-v2-local exports no server function');
  const server: Server = await start({ host: '127.0.0.1', port: 0 });
  server.on('error', () => undefined);
  const endpoint = `http://127.0.0.1:${portOf(server)}`;
  return {
    endpoint,
    credentials,
    stop: () => stopServer(server),
    async emails() {
      const response = await fetch(`${endpoint}/store`);
      const body: unknown = await response.json();
      const emails = typeof body === 'object' && body !== null && 'emails' in body && Array.isArray(body.emails) ? body.emails : [];
      return emails.flatMap((email: unknown): SesLocalEmail[] => {
        if (typeof email !== 'object' || email === null) return [];
        const record = Object.fromEntries(Object.entries(email));
        const destination = typeof record.destination === 'object' && record.destination !== null ? Object.fromEntries(Object.entries(record.destination)) : {};
        const list = (value: unknown): string[] => (Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : []);
        return [{ messageId: String(record.messageId), from: String(record.from), subject: String(record.subject), destination: { to: list(destination.to), cc: list(destination.cc), bcc: list(destination.bcc) } }];
      });
    },
  };
}

export interface CapturedSend {
  raw: Buffer;
  destination: string[];
  tags: Array<{ Name: string; Value: string }>;
  configurationSet: string | undefined;
  messageId: string;
}

export interface SesCapture extends SesEndpoint {
  sends: CapturedSend[];
  /** The next `times` sends are answered with this SES error (HTTP status and error type). */
  failNext(status: number, type: string, times?: number): void;
}

export async function startSesCapture(): Promise<SesCapture> {
  const sends: CapturedSend[] = [];
  let failures: Array<{ status: number; type: string }> = [];
  let counter = 0;
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const failure = failures.shift();
      if (failure) {
        response.writeHead(failure.status, { 'content-type': 'application/json', 'x-amzn-errortype': failure.type });
        response.end(JSON.stringify({ message: `capture server says ${failure.type}` }));
        return;
      }
      if (request.method !== 'POST' || request.url !== '/v2/email/outbound-emails') {
        response.writeHead(404, { 'x-amzn-errortype': 'NotFoundException' }).end('{}');
        return;
      }
      const parsed: unknown = JSON.parse(body);
      const input = typeof parsed === 'object' && parsed !== null ? Object.fromEntries(Object.entries(parsed)) : {};
      const pick = (value: unknown, key: string): unknown => (typeof value === 'object' && value !== null ? Object.fromEntries(Object.entries(value))[key] : undefined);
      const data = pick(pick(input.Content, 'Raw'), 'Data');
      const to = pick(input.Destination, 'ToAddresses');
      const tags = Array.isArray(input.EmailTags) ? input.EmailTags : [];
      const messageId = `0100019abc${String(++counter).padStart(6, '0')}-capture-000000`;
      sends.push({
        raw: Buffer.from(typeof data === 'string' ? data : '', 'base64'),
        destination: Array.isArray(to) ? to.filter((entry): entry is string => typeof entry === 'string') : [],
        tags: tags.map((tag: unknown) => ({ Name: String(pick(tag, 'Name')), Value: String(pick(tag, 'Value')) })),
        configurationSet: typeof input.ConfigurationSetName === 'string' ? input.ConfigurationSetName : undefined,
        messageId,
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ MessageId: messageId }));
    });
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${portOf(server)}`,
    credentials,
    sends,
    failNext(status, type, times = 1) {
      failures = [...failures, ...Array.from({ length: times }, () => ({ status, type }))];
    },
    stop: () => stopServer(server),
  };
}
