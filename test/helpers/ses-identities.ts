// A small SESv2 email-identity service for tests (aws-ses-v2-local has no identity calls): the
// REST endpoints CreateEmailIdentity, GetEmailIdentity, PutEmailIdentityDkimSigningAttributes
// and DeleteEmailIdentity, over real HTTP for a real SDK client. Every request is recorded. It
// checks what SES checks: a BYODKIM private key must be the base64 DER of a 1024- or 2048-bit
// RSA key, and the domain is verified only once the TXT record at <selector>._domainkey.<domain>
// (looked up in the given DNS zone on each GetEmailIdentity) holds that key's public half.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resolver } from '../../core/ports.js';

export interface RecordedRequest {
  method: string;
  path: string;
  body: Record<string, unknown>;
}

export interface FakeIdentity {
  domain: string;
  configurationSet: string | undefined;
  /** EXTERNAL (BYODKIM) or AWS_SES (Easy DKIM). */
  origin: 'EXTERNAL' | 'AWS_SES';
  selector: string | undefined;
  privateKey: KeyObject | undefined;
  verified: boolean;
}

export interface SesIdentityService {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  requests: RecordedRequest[];
  identities: Map<string, FakeIdentity>;
  /** The next `times` requests are answered with this SES error. */
  failNext(status: number, type: string, times?: number): void;
  stop(): Promise<void>;
}

const IDENTITIES = '/v2/email/identities';

function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      try {
        const parsed: unknown = text ? JSON.parse(text) : {};
        resolve(typeof parsed === 'object' && parsed !== null ? Object.fromEntries(Object.entries(parsed)) : {});
      } catch (error: unknown) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, body: unknown, errorType?: string): void {
  response.writeHead(status, { 'content-type': 'application/json', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
  response.end(JSON.stringify(errorType ? { message: String(body) } : body));
}

class SesError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** SES's check of a BYODKIM key: base64 PKCS#1 DER, RSA, 1024 or 2048 bits. */
function byodkimKey(attributes: unknown): { selector: string; privateKey: KeyObject } {
  const fields = typeof attributes === 'object' && attributes !== null ? Object.fromEntries(Object.entries(attributes)) : {};
  const selector = fields['DomainSigningSelector'];
  const encoded = fields['DomainSigningPrivateKey'];
  if (typeof selector !== 'string' || typeof encoded !== 'string') throw new SesError(400, 'BadRequestException', 'DomainSigningSelector and DomainSigningPrivateKey are required');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(encoded, 'base64'), format: 'der', type: 'pkcs1' });
  } catch {
    throw new SesError(400, 'BadRequestException', 'Invalid private key: base64 of an RSA private key expected');
  }
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (privateKey.asymmetricKeyType !== 'rsa' || (bits !== 1024 && bits !== 2048)) throw new SesError(400, 'BadRequestException', 'Invalid private key: RSA 1024 or 2048 bits expected');
  return { selector, privateKey };
}

export async function startSesIdentityService(resolver: Pick<Resolver, 'resolveTxt'>): Promise<SesIdentityService> {
  const requests: RecordedRequest[] = [];
  const identities = new Map<string, FakeIdentity>();
  let failures: Array<{ status: number; type: string }> = [];

  /** SES looks the DKIM record up again while the identity is not verified. */
  const checkDns = async (identity: FakeIdentity): Promise<void> => {
    if (identity.verified || identity.origin !== 'EXTERNAL' || !identity.selector || !identity.privateKey) return;
    const expected = createPublicKey(identity.privateKey).export({ type: 'spki', format: 'der' }).toString('base64');
    try {
      const records = await resolver.resolveTxt(`${identity.selector}._domainkey.${identity.domain}`);
      identity.verified = records.map((parts) => parts.join('')).some((value) => value.replace(/\s+/g, '').includes(`p=${expected}`));
    } catch {
      identity.verified = false;
    }
  };

  const describe = (identity: FakeIdentity) => {
    const status = identity.verified ? 'SUCCESS' : 'PENDING';
    return {
      IdentityType: 'DOMAIN',
      FeedbackForwardingStatus: true,
      VerifiedForSendingStatus: identity.verified,
      VerificationStatus: status,
      DkimAttributes: { SigningEnabled: true, Status: status, Tokens: identity.selector ? [identity.selector] : ['easydkimtoken1', 'easydkimtoken2', 'easydkimtoken3'], SigningAttributesOrigin: identity.origin },
      ...(identity.configurationSet ? { ConfigurationSetName: identity.configurationSet } : {}),
      Policies: {},
      Tags: [],
    };
  };

  const handle = async (method: string, path: string, body: Record<string, unknown>): Promise<unknown> => {
    if (method === 'POST' && path === IDENTITIES) {
      const domain = body['EmailIdentity'];
      if (typeof domain !== 'string' || domain === '') throw new SesError(400, 'BadRequestException', 'EmailIdentity is required');
      if (identities.has(domain)) throw new SesError(400, 'AlreadyExistsException', `Email identity ${domain} already exists.`);
      const byodkim = body['DkimSigningAttributes'] === undefined ? undefined : byodkimKey(body['DkimSigningAttributes']);
      const identity: FakeIdentity = {
        domain,
        configurationSet: typeof body['ConfigurationSetName'] === 'string' ? body['ConfigurationSetName'] : undefined,
        origin: byodkim ? 'EXTERNAL' : 'AWS_SES',
        selector: byodkim?.selector,
        privateKey: byodkim?.privateKey,
        verified: false,
      };
      identities.set(domain, identity);
      const { IdentityType, VerifiedForSendingStatus, DkimAttributes } = describe(identity);
      return { IdentityType, VerifiedForSendingStatus, DkimAttributes };
    }
    const match = /^\/v2\/email\/identities\/([^/]+)(\/dkim\/signing)?$/.exec(path);
    if (!match?.[1]) throw new SesError(404, 'NotFoundException', `no route ${method} ${path}`);
    const domain = decodeURIComponent(match[1]);
    const identity = identities.get(domain);
    if (!identity) throw new SesError(404, 'NotFoundException', `Email identity ${domain} does not exist.`);
    if (match[2]) {
      if (method !== 'PUT') throw new SesError(404, 'NotFoundException', `no route ${method} ${path}`);
      if (body['SigningAttributesOrigin'] !== 'EXTERNAL') throw new SesError(400, 'BadRequestException', 'only EXTERNAL signing is modelled here');
      const { selector, privateKey } = byodkimKey(body['SigningAttributes']);
      Object.assign(identity, { origin: 'EXTERNAL', selector, privateKey, verified: false });
      return { DkimStatus: 'PENDING', DkimTokens: [selector] };
    }
    if (method === 'GET') {
      await checkDns(identity);
      return describe(identity);
    }
    if (method === 'DELETE') {
      identities.delete(domain);
      return {};
    }
    throw new SesError(404, 'NotFoundException', `no route ${method} ${path}`);
  };

  const server: Server = createServer((request, response) => {
    const method = request.method ?? 'GET';
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    readJson(request)
      .then(async (body) => {
        requests.push({ method, path, body });
        const failure = failures.shift();
        if (failure) return answer(response, failure.status, `fake says ${failure.type}`, failure.type);
        return answer(response, 200, await handle(method, path, body));
      })
      .catch((error: unknown) => {
        if (error instanceof SesError) return answer(response, error.status, error.message, error.type);
        return answer(response, 500, error instanceof Error ? error.message : String(error), 'InternalFailure');
      });
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? (address satisfies AddressInfo).port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'AKIDEMULATOR', secretAccessKey: 'emulator-secret' },
    requests,
    identities,
    failNext(status, type, times = 1) {
      failures = [...failures, ...Array.from({ length: times }, () => ({ status, type }))];
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
