// The single node started in-process for end-to-end tests: real listeners on port 0, a temp data
// folder, the loopback DNS server of test/helpers/dns-server.ts, and delivery through a relay host
// the test owns (postfix smtp-sink or the smtp-server-based test MX). Tenants, domains and users
// are created in the node's own stores, as the CLI would.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { startNode, type RunningNode } from '../../bin/single-node.js';
import { parseConfig } from '../../core/config.js';
import { hashPassword, type OutgoingUser, type Tenant } from '../../core/identity.js';
import type { SettingOverrides } from '../../core/settings.js';
import type { MessageEvent, MessageRecord } from '../../core/stores.js';
import { startDnsServer, type DnsServer, type Zone } from '../helpers/dns-server.js';
import { RawSmtp } from '../helpers/smtp-client.js';

export const PASSWORD = 'a good long password';

export interface E2eNode {
  node: RunningNode;
  dns: DnsServer;
  dataDir: string;
  addTenant(name: string, settings?: SettingOverrides, domains?: string[]): Promise<Tenant>;
  addUser(tenant: Tenant, address: string, settings?: SettingOverrides): Promise<OutgoingUser>;
  stop(): Promise<void>;
}

/** `config` is merged over the test defaults (section by section, one level deep). */
export async function startE2eNode(zone: Zone, config: Record<string, Record<string, unknown>> = {}): Promise<E2eNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-e2e-'));
  const dns = await startDnsServer(zone);
  const section = (name: string, defaults: Record<string, unknown>): Record<string, unknown> => ({ ...defaults, ...(config[name] ?? {}) });
  const extra = Object.fromEntries(Object.entries(config).filter(([name]) => !['smtp', 'http', 'dns', 'queue', 'delivery'].includes(name)));
  const node = await startNode(
    parseConfig({
      dataDir,
      hostname: 'outpost.test',
      listenAddress: '127.0.0.1',
      smtp: section('smtp', { port: 0, smtpsPort: 0, bouncePort: 0 }),
      http: section('http', { port: 0 }),
      dns: section('dns', { servers: [dns.address], timeoutMs: 1000 }),
      queue: section('queue', { pollIntervalMs: 50, visibilityTimeoutSeconds: 30 }),
      delivery: section('delivery', { retrySchedule: [1, 1, 1], connectTimeoutSeconds: 5 }),
      ...extra,
    }),
  );
  const { configStore } = node.stores;
  return {
    node,
    dns,
    dataDir,
    async addTenant(name, settings = {}, domains = []) {
      const tenant = await configStore.createTenant(name, settings);
      for (const domain of domains) await configStore.addDomain(tenant.id, domain);
      return tenant;
    },
    async addUser(tenant, address, settings = {}) {
      const domain = address.slice(address.lastIndexOf('@') + 1);
      return configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: address, domain, passwordHash: await hashPassword(PASSWORD), settings });
    },
    async stop() {
      await node.stop();
      await dns.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Submission {
  from: string;
  to: string[];
  subject: string;
  text?: string;
  attachments?: Array<{ filename: string; content: string | Buffer }>;
}

/** Submits like a mail client (STARTTLS, AUTH); resolves with the queue id of the 250 answer. */
export async function submit(port: number, mail: Submission): Promise<string> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    auth: { user: mail.from, pass: PASSWORD },
    tls: { rejectUnauthorized: false },
  });
  try {
    const info = await transport.sendMail({
      from: mail.from,
      to: mail.to,
      subject: mail.subject,
      text: mail.text ?? `Body of ${mail.subject}`,
      ...(mail.attachments ? { attachments: mail.attachments } : {}),
    });
    const id = /queued as (\S+)/.exec(info.response)?.[1];
    if (!id) throw new Error(`no queue id in "${info.response}"`);
    return id;
  } finally {
    transport.close();
  }
}

/**
 * One submission session driven by hand, up to RCPT, for exact refusal codes:
 * returns the answers to MAIL FROM and to each RCPT TO.
 */
export async function tryEnvelope(port: number, from: string, rcpts: string[]): Promise<{ mail: string; rcpts: string[] }> {
  const { client } = await RawSmtp.open(port);
  try {
    await client.command('EHLO client.test');
    const tls = await client.startTls();
    if (!tls.startsWith('220')) throw new Error(`STARTTLS refused: ${tls}`);
    await client.command('EHLO client.test');
    const auth = await client.authPlain(from, PASSWORD);
    if (!auth.startsWith('235')) throw new Error(`AUTH refused: ${auth}`);
    const mail = await client.command(`MAIL FROM:<${from}>`);
    const answers: string[] = [];
    if (mail.startsWith('250')) for (const rcpt of rcpts) answers.push(await client.command(`RCPT TO:<${rcpt}>`));
    await client.command('QUIT');
    return { mail, rcpts: answers };
  } finally {
    client.close();
  }
}

/** Polls `probe` until it returns a value other than undefined. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The message's log once its status is `status` (or fails naming the status it is stuck in). */
export async function messageWithStatus(node: RunningNode, id: string, status: string): Promise<{ message: MessageRecord; events: MessageEvent[] }> {
  let last = 'absent';
  try {
    return await eventually(`message ${id} to become ${status}`, async () => {
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
