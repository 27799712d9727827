// What the benchmarks share: postfix's smtp-sink counting what it receives (its -c counter, no
// dumps: writing files would make the sink the bottleneck), medians, and the ratio lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { parseConfig, type Config } from '../core/config.js';
import { addDkimKey } from '../core/dkim/keys.js';
import { hashPassword, type OutgoingUser } from '../core/identity.js';
import type { Stores } from '../core/ports/stores.js';
import { freePort, waitForGreeting } from '../test/helpers/net.js';

export interface CountingSink {
  port: number;
  /** Messages the sink has received so far (its "mesg=" counter). */
  received(): number;
  /** SMTP sessions the sink has served so far (its "sess=" counter). */
  sessions(): number;
  /** Resolves once `count` messages have arrived; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startCountingSink(): Promise<CountingSink> {
  const port = await freePort();
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const child: ChildProcess = spawn('/usr/sbin/smtp-sink', [...(asRoot ? ['-u', 'nobody'] : []), '-c', `127.0.0.1:${port}`, '1024'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('error', (error) => process.stderr.write(`smtp-sink: ${error.message}\n`));
  let count = 0;
  let sessions = 0;
  let tail = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('latin1')).slice(-200);
    const matches = [...tail.matchAll(/mesg=(\d+)/g)];
    const last = matches.at(-1)?.[1];
    if (last !== undefined) count = Number(last);
    const session = [...tail.matchAll(/sess=(\d+)/g)].at(-1)?.[1];
    if (session !== undefined) sessions = Number(session);
  });
  await waitForGreeting('smtp-sink', port);
  return {
    port,
    received: () => count,
    sessions: () => sessions,
    async waitFor(target, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (count < target) {
        if (Date.now() > deadline) throw new Error(`smtp-sink received ${count} of ${target} messages in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/**
 * A 2 KB message body of ordinary text, in lines of ordinary length. Prose, not one sentence
 * repeated: the scan's fingerprint hashes each distinct word and phrase once, so a repeated
 * sentence would make the scan look cheaper than it is for real mail.
 */
export const BODY_2K = [
  'Hello Maria,',
  '',
  'Thank you for sending the revised figures for the third quarter so quickly. I went through',
  'the spreadsheet this morning with Daniel, and we agree that the warehouse numbers now match',
  'what the regional offices reported last week. Two questions remain before we can close the',
  'books: the freight invoices from the Rotterdam carrier seem to be counted twice in October,',
  'and the currency adjustment for the Swiss subsidiary uses the rate from the first of the',
  'month instead of the average. Could you check both with accounting and let me know whether',
  'the totals change?',
  '',
  'On a different subject, the training session for the new ordering system has moved from',
  'Tuesday to Thursday afternoon, because the vendor could not send their trainer earlier. The',
  'room is booked from two until five, and coffee will be served at half past three. Please',
  'forward the invitation to anyone in your team who places orders more than once a month; the',
  'old system will be switched off at the end of November, and after that nobody will be able',
  'to enter purchase requests the old way.',
  '',
  'Finally, a reminder that the office will be closed on the twenty-fourth and twenty-fifth of',
  'December. If you plan to take leave between the holidays, enter it in the calendar before',
  'Friday, so that we can make sure somebody is always available to answer customer calls and',
  'to receive deliveries at the loading dock. Parcels that arrive while nobody is there are',
  'returned to the depot, and collecting them again costs a whole morning.',
  '',
  'I also attach the draft budget for next year. It assumes the same headcount as this year,',
  'one additional van for the northern routes, and a modest increase in the marketing spend for',
  'the spring catalogue. Comments are welcome until the end of next week; after that, the draft',
  'goes to the board together with the annual report.',
  '',
  'Best regards,',
  'Jonathan Weber',
  'Finance and Operations',
  '',
].join('\r\n');

export function line(label: string, value: string): string {
  return `${label.padEnd(50)} ${value}`;
}

/**
 * The single node as the benchmarks run it: loopback, ports chosen by the system, the bench's DNS
 * server, its sink as smarthost, a short poll interval; `extra` adds top-level sections.
 */
export function benchConfig(dataDir: string, dnsAddress: string, sinkPort: number, extra: Record<string, unknown> = {}): Config {
  return parseConfig({
    dataDir,
    hostname: 'relay.bench.test',
    listenAddress: '127.0.0.1',
    smtp: { port: 0, smtpsPort: 0, bouncePort: 0 },
    http: { port: 0 },
    dns: { servers: [dnsAddress] },
    delivery: { relayHost: `127.0.0.1:${sinkPort}` },
    queue: { pollIntervalMs: 20 },
    ...extra,
  });
}

/** A tenant without limits serving acme.test, with a DKIM key, and `identity` as its mailbox user. */
export async function benchMailboxUser(stores: Pick<Stores, 'configStore' | 'dkimKeys'>, identity: string, password: string): Promise<OutgoingUser> {
  const tenant = await stores.configStore.createTenant('bench', { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0 });
  await stores.configStore.addDomain(tenant.id, 'acme.test');
  const user = await stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity, domain: 'acme.test', passwordHash: await hashPassword(password) });
  await addDkimKey(stores.dkimKeys, { domain: 'acme.test', now: Date.now() });
  return user;
}
