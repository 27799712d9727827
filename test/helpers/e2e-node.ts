// The single node started in-process (bin/single-node.ts `startNode`) as the end-to-end tests
// need it: every listener on port 0, a temporary data folder, a loopback DNS server answering for
// the test domains, postfix's smtp-sink as the smarthost (or a relay host the test owns, such as
// the smtp-server-based test MX), and a clock the test can move forward. Tenants, domains and
// users are created in the node's own stores, as the CLI would. Plus the two SMTP clients the
// tests talk through: nodemailer (STARTTLS + AUTH, as a mail client sends) and the raw client,
// when the exact reply to each command matters; and waiting for a message's status.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { startNode, type RunningNode } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import { hashPassword, parseIdentity, type OutgoingUser, type Tenant } from '../../core/identity.js';
import { createLogger } from '../../core/log.js';
import type { Clock } from '../../core/ports.js';
import type { SettingOverrides } from '../../core/settings.js';
import type { MessageEvent, MessageRecord } from '../../core/stores.js';
import { a, mx, startDnsServer, txt, type DnsServer, type Zone } from './dns-server.js';
import { waitFor } from './net.js';
import { RawSmtp } from './smtp-client.js';
import { startSmtpSink, type SmtpSink } from './smtp-sink.js';

export const PASSWORD = 'a good long password';

/**
 * Domains of the test zone. Sender and recipient domains resolve; `nowhere.test` does not exist
 * (NXDOMAIN) and `empty.test` exists with neither MX nor A (NODATA): neither accepts mail.
 */
export function testZone(): Zone {
  return {
    'acme.test': [a('127.0.0.1')],
    'globex.test': [a('127.0.0.1')],
    'other.test': [mx(10, 'mx.other.test')],
    'mx.other.test': [a('127.0.0.1')],
    'example.org': [mx(10, 'mx.example.org')],
    'mx.example.org': [a('127.0.0.1')],
    'empty.test': [txt('v=spf1 -all')],
  };
}

/** Real time plus an offset the test moves forward (windows, lock durations). */
export class MovableClock implements Clock {
  private offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface E2eNode {
  node: RunningNode;
  clock: MovableClock;
  dns: DnsServer;
  /** The smtp-sink the node relays to; throws when the test gave its own `relayHost`. */
  readonly sink: SmtpSink;
  dataDir: string;
  /** Creates a tenant owning `domains`, with tenant-level default settings. */
  tenant(name: string, domains: string[], settings?: SettingOverrides): Promise<Tenant>;
  /** Creates a mailbox or domain user with PASSWORD and per-user overrides. */
  user(tenant: Tenant, identity: string, settings?: SettingOverrides): Promise<OutgoingUser>;
  stop(): Promise<void>;
}

export interface E2eNodeOptions {
  /** Config fields merged over the test defaults (ports 0, loopback, DNS, smarthost), section by section. */
  config?: Record<string, unknown>;
  /** The loopback DNS server's zone; default testZone(). */
  zone?: Zone;
  /** host:port of the smarthost; without it the fixture starts postfix's smtp-sink for it. */
  relayHost?: string;
  /** Port of MX hosts, for tests that deliver by MX (config delivery.relayHost set to undefined). */
  mxPort?: number;
}

export async function startE2eNode(options: E2eNodeOptions = {}): Promise<E2eNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-e2e-'));
  const dns = await startDnsServer(options.zone ?? testZone());
  const sink = options.relayHost === undefined ? await startSmtpSink() : undefined;
  const relayHost = options.relayHost ?? `127.0.0.1:${sink?.port ?? 0}`;
  const clock = new MovableClock();
  const { smtp, http, delivery, dns: dnsConfig, queue, ...rest } = options.config ?? {};
  const config = parseConfig({
    dataDir,
    hostname: 'relay.test',
    listenAddress: '127.0.0.1',
    ...rest,
    smtp: { port: 0, smtpsPort: 0, bouncePort: 0, ...asObject(smtp) },
    http: { port: 0, ...asObject(http) },
    // Retries a second apart and a short connect timeout: a failed delivery shows within seconds.
    // The test MXs listen on loopback, which MX delivery skips unless allowed.
    delivery: { relayHost, retrySchedule: [1, 1, 1], connectTimeoutSeconds: 5, allowPrivateMxAddresses: true, ...asObject(delivery) },
    dns: { servers: [dns.address], timeoutMs: 1000, ...asObject(dnsConfig) },
    queue: { pollIntervalMs: 50, visibilityTimeoutSeconds: 30, ...asObject(queue) },
  });
  let node: RunningNode;
  try {
    node = await startNode(config, { clock, logger: createLogger('outpost', { level: 'error' }), mxPort: options.mxPort });
  } catch (error: unknown) {
    await Promise.all([dns.stop(), sink?.stop()]);
    throw error;
  }
  const passwordHash = await hashPassword(PASSWORD);
  const { configStore } = node.stores;
  return {
    node,
    clock,
    dns,
    get sink(): SmtpSink {
      if (!sink) throw new Error(`this node relays to ${relayHost}, a server the test started: read what it received there`);
      return sink;
    },
    dataDir,
    async tenant(name, domains, settings = {}) {
      const tenant = await configStore.createTenant(name, settings);
      for (const domain of domains) await configStore.addDomain(tenant.id, domain);
      return tenant;
    },
    async user(tenant, identity, settings = {}) {
      const parsed = parseIdentity(identity);
      return configStore.createUser({ tenantId: tenant.id, ...parsed, passwordHash, settings });
    },
    async stop() {
      await node.stop();
      await Promise.all([dns.stop(), sink?.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...value } : {};
}

/** "550 5.7.1 text" → its parts; multi-line replies keep the last line's text. */
export function parseReply(reply: string): { code: number; enhanced: string; text: string } {
  const last = reply.split('\r\n').at(-1) ?? '';
  const match = /^(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})?\s*(.*)$/.exec(last);
  return { code: Number(match?.[1] ?? 0), enhanced: match?.[2] ?? '', text: match?.[3] ?? last };
}

/** A raw session on the submission port: greeting, EHLO, STARTTLS, EHLO, and AUTH PLAIN if `login` is given (from `localAddress`, if given). */
export async function rawSession(port: number, login?: string, password = PASSWORD, options: { localAddress?: string } = {}): Promise<{ smtp: RawSmtp; auth?: string }> {
  const { client, greeting } = await RawSmtp.open(port, options);
  if (!greeting.startsWith('220')) throw new Error(`expected a 220 greeting, got ${greeting}`);
  await expectCode(client.command('EHLO client.test'), 250);
  await expectCode(client.startTls(), 220);
  await expectCode(client.command('EHLO client.test'), 250);
  if (login === undefined) return { smtp: client };
  const auth = await client.authPlain(login, password);
  return { smtp: client, auth };
}

async function expectCode(reply: Promise<string>, code: number): Promise<string> {
  const text = await reply;
  if (!text.startsWith(String(code))) throw new Error(`expected ${code}, got ${text}`);
  return text;
}

/** A small, well-formed message (Date and Message-ID present, CRLF line endings), ending with the dot line. */
export function rawMessage(from: string, to: string, subject: string, extraHeaders: string[] = [], body = 'Hello.'): string {
  const lines = [
    `From: ${from}`,
    `To: ${to}`,
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${subject.replace(/[^A-Za-z0-9]/g, '')}.${Date.now()}@client.test>`,
    ...extraHeaders,
    '',
    body,
  ];
  return lines.join('\r\n') + '\r\n.\r\n';
}

/** MAIL, RCPT (each), DATA, message: every reply, in order. Stops at the first refused MAIL or DATA. */
export async function rawTransaction(
  smtp: RawSmtp,
  transaction: { mailFrom: string; rcptTo: string[]; message?: string; mailParams?: string },
): Promise<{ mail: string; rcpt: string[]; data?: string; end?: string }> {
  const mail = await smtp.command(`MAIL FROM:<${transaction.mailFrom}>${transaction.mailParams ? ' ' + transaction.mailParams : ''}`);
  if (!mail.startsWith('250')) return { mail, rcpt: [] };
  const rcpt: string[] = [];
  for (const recipient of transaction.rcptTo) rcpt.push(await smtp.command(`RCPT TO:<${recipient}>`));
  if (transaction.message === undefined) {
    await smtp.command('RSET');
    return { mail, rcpt };
  }
  const data = await smtp.command('DATA');
  if (!data.startsWith('354')) return { mail, rcpt, data };
  smtp.write(transaction.message);
  return { mail, rcpt, data, end: await smtp.reply() };
}

/**
 * One submission session driven by hand, up to RCPT, for exact refusal codes: AUTH as `from`,
 * then the answers to MAIL FROM and to each RCPT TO.
 */
export async function tryEnvelope(port: number, from: string, rcpts: string[]): Promise<{ mail: string; rcpts: string[] }> {
  const { smtp, auth } = await rawSession(port, from);
  try {
    if (!auth?.startsWith('235')) throw new Error(`AUTH of ${from} refused: ${auth}`);
    const { mail, rcpt } = await rawTransaction(smtp, { mailFrom: from, rcptTo: rcpts });
    await smtp.command('QUIT');
    return { mail, rcpts: rcpt };
  } finally {
    smtp.close();
  }
}

export interface Submission {
  from: string;
  to: string | string[];
  subject: string;
  text?: string;
  attachments?: Array<{ filename: string; content: string | Buffer }>;
}

/** Sends one message with nodemailer over STARTTLS + AUTH as `login`; resolves with the server's final reply or rejects with its error. */
export async function sendWithNodemailer(port: number, login: string, mail: Submission): Promise<string> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    auth: { user: login, pass: PASSWORD },
    tls: { rejectUnauthorized: false },
  });
  try {
    const info = await transport.sendMail({ ...mail, text: mail.text ?? `Body of ${mail.subject}.` });
    return info.response;
  } finally {
    transport.close();
  }
}

/** Submits like a mail client logged in as the From address; resolves with the queue id of the 250 answer. */
export async function submit(port: number, mail: Submission): Promise<string> {
  const response = await sendWithNodemailer(port, mail.from, mail);
  const id = /queued as (\S+)/.exec(response)?.[1];
  if (!id) throw new Error(`no queue id in "${response}"`);
  return id;
}

/** The SMTP reply text carried by a nodemailer error (its `response`), or the message. */
export function nodemailerReply(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'response' in error && typeof error.response === 'string') return error.response;
  return error instanceof Error ? error.message : String(error);
}

/** The message's log once its status is `status` (or fails naming the status it is stuck in). */
export async function messageWithStatus(node: RunningNode, id: string, status: string): Promise<{ message: MessageRecord; events: MessageEvent[] }> {
  let last = 'absent';
  try {
    return await waitFor(`message ${id} to become ${status}`, async () => {
      const found = await node.stores.log.get(id);
      last = found ? `${found.message.status} (${found.events.map((e) => e.event).join(', ')})` : 'absent';
      return found?.message.status === status ? found : undefined;
    });
  } catch {
    throw new Error(`message ${id} did not become ${status}; it is ${last}`);
  }
}

/** The header section of a message, unfolded, as name (lowercase) → values. */
export function headersOf(data: Buffer): Map<string, string[]> {
  const text = data.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const fields = new Map<string, string[]>();
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    fields.set(name, [...(fields.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return fields;
}
