// A real API over real SQLite stores on a temp file, with a clock the test moves, and helpers to
// call it and to seed a tenant with one of everything (users of each kind, messages, a lock, a
// quarantined message, a DKIM key, a suppression entry, an API key).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { SqliteApiKeyStore } from '../../../adapters/local/api-key-store.js';
import { SqliteAuditLog } from '../../../adapters/local/audit-log.js';
import { SqliteConfigStore } from '../../../adapters/local/config-store.js';
import { SqliteDkimKeyStore } from '../../../adapters/local/dkim-key-store.js';
import { FsBlobStore } from '../../../adapters/local/fs-blob-store.js';
import { SqliteHoldStore } from '../../../adapters/local/hold-store.js';
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { SqliteMessageLog } from '../../../adapters/local/message-log.js';
import { SqliteQuarantineStore } from '../../../adapters/local/quarantine-store.js';
import { SqliteQueue } from '../../../adapters/local/queue.js';
import { localSecretBoxFromKey } from '../../../adapters/local/secret-box.js';
import { openDatabase, type Db } from '../../../adapters/local/sqlite.js';
import { SqliteMessageStats } from '../../../adapters/local/stats-store.js';
import { SqliteSuppressionList } from '../../../adapters/local/suppression-store.js';
import { MailHolds } from '../../../core/holds.js';
import { UserLocks } from '../../../core/locks.js';
import type { Envelope, Resolver } from '../../../core/ports.js';
import type { EmailIdentities } from '../../../core/ports/email-identities.js';
import { allRoutes, createApiApp } from '../../../lambdas/api/app.js';
import type { ApiDeps } from '../../../lambdas/api/deps.js';

export const OPERATOR_TOKEN = 'operator-token-for-tests-0123456789';

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  contentType?: string;
  ip?: string;
}

export class ApiFixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'outpost-api-'));
  readonly db: Db = openDatabase(join(this.dir, 'outpost.db'));
  now = Date.parse('2026-03-10T12:30:00Z');
  readonly clock = { now: () => this.now };
  readonly deps: ApiDeps;
  readonly app: Hono;
  /** "METHOD /v1/template" of every route answered with 2xx, for the coverage check. */
  readonly covered = new Set<string>();
  readonly queue: SqliteQueue;
  readonly blobs: FsBlobStore;

  /** The relay's host name the API is told about (tenants may not claim it). */
  static readonly RELAY_HOSTNAME = 'mx.outpost-relay.example';

  constructor(options: { optionalPorts?: boolean; authFailures?: { max: number; windowMs: number }; resolver?: Resolver; emailIdentities?: EmailIdentities } = {}) {
    const configStore = new SqliteConfigStore(this.db, this.clock);
    const messageLog = new SqliteMessageLog(this.db, this.clock);
    this.queue = new SqliteQueue(this.db, { maxReceives: 5, clock: this.clock });
    this.blobs = new FsBlobStore(join(this.dir, 'blobs'));
    const optional = options.optionalPorts ?? true;
    const locks = new UserLocks({ store: new SqliteLockStore(this.db), clock: this.clock, configStore });
    const holdStore = new SqliteHoldStore(this.db);
    const holds = new MailHolds({ store: holdStore, queue: this.queue, blobs: this.blobs, log: messageLog, clock: this.clock, activeLock: (userId) => locks.activeLock(userId) });
    this.deps = {
      operatorToken: OPERATOR_TOKEN,
      configStore,
      messageLog,
      apiKeys: new SqliteApiKeyStore(this.db),
      stats: new SqliteMessageStats(this.db),
      clock: this.clock,
      checkResponses: true,
      relayHostname: ApiFixture.RELAY_HOSTNAME,
      ...(options.resolver ? { resolver: options.resolver } : {}),
      ...(options.emailIdentities ? { emailIdentities: options.emailIdentities } : {}),
      ...(options.authFailures ? { authFailures: options.authFailures } : {}),
      ...(optional
        ? {
            locks,
            holds: { holds, store: holdStore, queueLifetimeMs: 3 * 86_400_000 },
            dkimKeys: new SqliteDkimKeyStore(this.db, localSecretBoxFromKey(randomBytes(32)), this.clock),
            suppression: new SqliteSuppressionList(this.db, this.clock),
            quarantine: { store: new SqliteQuarantineStore(this.db), blobs: this.blobs, queue: this.queue },
            deadLetters: this.queue,
            audit: new SqliteAuditLog(this.db, this.clock),
          }
        : {}),
    };
    this.app = createApiApp(this.deps);
  }

  async call(method: string, path: string, options: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? OPERATOR_TOKEN : options.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    let body: string | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    // The node server's env shape: the default client IP comes from the socket.
    const env = { incoming: { socket: { remoteAddress: options.ip ?? '192.0.2.200' } } };
    const response = await this.app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }, env);
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    const parsed: unknown = text && /json/.test(type) ? JSON.parse(text) : text;
    if (response.status < 300) this.noteCoverage(method, path);
    return { status: response.status, headers: response.headers, body: parsed };
  }

  private noteCoverage(method: string, path: string): void {
    const bare = path.split('?')[0] ?? path;
    for (const route of allRoutes) {
      if (route.method !== method.toLowerCase()) continue;
      const pattern = new RegExp(`^${route.path.replace(/\{\w+\}/g, '[^/]+')}$`);
      if (pattern.test(bare)) this.covered.add(`${route.method.toUpperCase()} ${route.path}`);
    }
  }

  close(): void {
    this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SeededTenant {
  tenantId: string;
  name: string;
  key: string;
  keyId: string;
  domain: string;
  mailboxUserId: string;
  domainUserId: string;
  ipUserId: string;
  /** In the message log (status quarantined) and in the quarantine. */
  messageId: string;
  deliveredId: string;
  selector: string;
  suppressed: string;
  /** The clock when the tenant was seeded (time of the message events). */
  seededAt: number;
}

function expectOk(reply: Reply, what: string): any {
  if (reply.status >= 300) throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

/** A tenant with one of everything, made through the API where the API can make it. */
export async function seedTenant(fx: ApiFixture, name: string, ipRange: string): Promise<SeededTenant> {
  const tenant = expectOk(await fx.call('POST', '/v1/tenants', { body: { name } }), 'create tenant');
  const t = `/v1/tenants/${tenant.id}`;
  const domain = `${name}.example`;
  expectOk(await fx.call('POST', `${t}/domains`, { body: { name: domain } }), 'add domain');
  const key = expectOk(await fx.call('POST', `${t}/keys`, { body: { name: 'panel' } }), 'create key');
  const mailbox = expectOk(await fx.call('POST', `${t}/users`, { body: { identity: `alice@${domain}`, password: 'correct horse battery' } }), 'mailbox user');
  const domainUser = expectOk(await fx.call('POST', `${t}/users`, { body: { identity: domain } }), 'domain user');
  const ipUser = expectOk(await fx.call('POST', `${t}/users`, { body: { identity: ipRange } }), 'ip user');

  const messageId = `${name}-held-1`;
  const deliveredId = `${name}-sent-1`;
  const base = fx.now - 3_600_000;
  await fx.deps.messageLog.create({ id: deliveredId, tenantId: tenant.id, userId: mailbox.id, identity: mailbox.identity, mailFrom: `alice@${domain}`, rcptTo: ['bob@dest.example', 'carol@dest.example'], size: 1200, subject: 'Invoice', status: 'queued', receivedAt: base });
  await fx.deps.messageLog.addEvent(deliveredId, 'delivered', { recipient: 'bob@dest.example' }, 'delivered');
  await fx.deps.messageLog.create({ id: messageId, tenantId: tenant.id, userId: mailbox.id, identity: mailbox.identity, mailFrom: `alice@${domain}`, rcptTo: ['dave@dest.example'], size: 900, subject: 'Cheap pills', status: 'queued', receivedAt: base + 60_000 });
  await fx.deps.messageLog.addEvent(messageId, 'quarantined', { symbols: [{ name: 'SPAM_SCORE', score: 12 }] }, 'quarantined');

  const blobKey = `messages/${messageId}.eml`;
  await fx.blobs.put(blobKey, Buffer.from(`From: alice@${domain}\r\nTo: dave@dest.example\r\nSubject: Cheap\r\n pills\r\n\r\nSECRET BODY TEXT\r\n`));
  const envelope: Envelope = { messageId, tenantId: tenant.id, userId: mailbox.id, identity: mailbox.identity, mailFrom: `alice@${domain}`, rcptTo: ['dave@dest.example'], blobKey, size: 900, receivedAt: base + 60_000, clientIp: '192.0.2.9', helo: 'client.example' };
  await fx.deps.quarantine?.store.add({ messageId, tenantId: tenant.id, userId: mailbox.id, envelope, kind: 'spam', symbols: [{ name: 'SPAM_SCORE', score: 12, evidence: { engine: 'rspamd' } }], subject: 'Cheap pills', blobKey, quarantinedAt: base + 120_000 });

  await fx.deps.locks?.lockAfterAbuse(mailbox.id, [{ name: 'RATE_LIMIT_HOUR', evidence: { limit: 500 } }]);
  const dkim = expectOk(await fx.call('POST', `${t}/domains/${domain}/dkim-keys`, { body: { selector: 'sel1', algorithm: 'ed25519' } }), 'dkim key');
  const suppressed = `gone-${name}@dest.example`;
  expectOk(await fx.call('POST', `${t}/suppressions`, { body: { address: suppressed, reason: 'asked to stop' } }), 'suppression');

  return {
    tenantId: tenant.id,
    name,
    key: key.key,
    keyId: key.id,
    domain,
    mailboxUserId: mailbox.id,
    domainUserId: domainUser.id,
    ipUserId: ipUser.id,
    messageId,
    deliveredId,
    selector: dkim.selector,
    suppressed,
    seededAt: base + 3_600_000,
  };
}
