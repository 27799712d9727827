// Chaos: the real single node (`outpost start`, a child process) is killed with SIGKILL at random
// moments while clients keep sending, and restarted, several times. Every message answered
// `250 … queued as ID` must reach the downstream server (postfix's smtp-sink, matched by the
// X-Outpost-Queue-Id header Outpost adds); none may be lost. A message may arrive twice only if
// its delivery was in flight (a received, undeleted 'deliver' queue entry) at one of the kills:
// the receiving server had it, but the relay died before it recorded the outcome.
//
// Bounded for `npm test` (about a minute on a busy 2-core machine). For a longer run:
//   OUTPOST_CHAOS_SECONDS=600 npx vitest run test/chaos/sigkill.test.ts
import Database from 'better-sqlite3';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStores } from '../../bin/local-stores.js';
import { parseConfig } from '../../core/config.js';
import { parseIdentity } from '../../core/identity.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { headersOf, testZone } from '../helpers/e2e-node.js';
import { relayEnv, relayPorts, startRelay, type RelayPorts, type RelayProcess } from '../helpers/relay-process.js';
import { RawSmtp } from '../helpers/smtp-client.js';
import { parseSinkDump, startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';

const LOAD_SECONDS = Number(process.env.OUTPOST_CHAOS_SECONDS ?? 40);
const SENDERS = 12;
/** Kill/restart cycles at least, however slow the machine (a start takes seconds under load). */
const MIN_KILLS = 4;
const DRAIN_MS = Math.max(60_000, LOAD_SECONDS * 600);
/** Longest drain while deliveries keep arriving, and how long without one ends it. */
const DRAIN_CAP_MS = 5 * DRAIN_MS;
const STALL_MS = 20_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let dataDir: string;
let dns: DnsServer;
let sink: SmtpSink;
let ports: RelayPorts;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'outpost-chaos-'));
  dns = await startDnsServer(testZone());
  sink = await startSmtpSink();
  ports = { ...(await relayPorts()), dns: dns.address };
  // Limits out of the way: this test is about durability, not policy.
  const configFile = join(dataDir, 'outpost.config.json');
  await writeFile(configFile, JSON.stringify({ defaults: { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0 } }));
  env = relayEnv(dataDir, ports, { OUTPOST_CONFIG: configFile, OUTPOST_RELAY_HOST: `127.0.0.1:${sink.port}`, OUTPOST_LOG_LEVEL: 'error' });
  // Set up in the data folder directly, as `outpost tenant/domain/user add` would (faster than three CLI runs).
  const stores = openLocalStores(parseConfig({ dataDir }));
  try {
    const tenant = await stores.configStore.createTenant('acme');
    await stores.configStore.addDomain(tenant.id, 'acme.test');
    // An IP user: the senders are a customer's mail server on 127.0.0.1, no AUTH.
    await stores.configStore.createUser({ tenantId: tenant.id, ...parseIdentity('127.0.0.1'), passwordHash: null });
  } finally {
    stores.close();
  }
});

afterAll(async () => {
  await sink?.stop();
  await dns?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** One sending client: a session kept open, messages one after another, a new session after any failure. */
async function sender(index: number, acked: Set<string>, state: { stopped: boolean; sent: number }): Promise<void> {
  let n = 0;
  while (!state.stopped) {
    let client: RawSmtp;
    try {
      const opened = await RawSmtp.open(ports.submission);
      client = opened.client;
      if (!opened.greeting.startsWith('220') || !(await client.command('EHLO sender.test')).startsWith('250')) {
        client.close();
        await sleep(100);
        continue;
      }
    } catch {
      await sleep(100); // the relay is down: try again shortly
      continue;
    }
    try {
      while (!state.stopped) {
        n += 1;
        const tag = `s${index}-${n}`;
        if (!(await client.command('MAIL FROM:<bulk@acme.test>')).startsWith('250')) break;
        if (!(await client.command(`RCPT TO:<r${n % 50}@example.org>`)).startsWith('250')) break;
        if (!(await client.command('DATA')).startsWith('354')) break;
        state.sent += 1;
        client.write(
          [`From: bulk@acme.test`, `To: r${n % 50}@example.org`, `Subject: chaos ${tag}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${tag}.${Date.now()}@sender.test>`, '', `Message ${tag}.`, '.', ''].join('\r\n'),
        );
        const reply = await client.reply();
        const id = /^250 .*queued as (\S+)/.exec(reply)?.[1];
        if (!id) break;
        acked.add(id);
      }
    } finally {
      client.close();
    }
  }
}

/** The most queue entries left at a kill (what the next start finds). */
let largestBacklog = 0;

/** Queue ids of 'deliver' entries received and not deleted: deliveries in flight when the relay died. */
function deliveriesInFlight(): string[] {
  const db = new Database(join(dataDir, 'outpost.db'));
  try {
    const rows = db.prepare("SELECT body FROM queue_messages WHERE queue = 'deliver' AND receipt IS NOT NULL").all() as Array<{ body: string }>;
    const backlog = db.prepare('SELECT COUNT(*) AS n FROM queue_messages').get() as { n: number };
    largestBacklog = Math.max(largestBacklog, backlog.n);
    return rows.map((row) => (JSON.parse(row.body) as { envelope: { messageId: string } }).envelope.messageId);
  } finally {
    db.close();
  }
}

/** How many times the sink received each queue id, read incrementally from its dumps. */
class SinkTally {
  readonly counts = new Map<string, number>();
  private readonly seen = new Set<string>();
  async update(): Promise<void> {
    for (const name of (await readdir(sink.dir)).filter((file) => file.startsWith('msg.'))) {
      if (this.seen.has(name)) continue;
      let id: string | undefined;
      try {
        id = headersOf(parseSinkDump(await readFile(join(sink.dir, name))).data).get('x-outpost-queue-id')?.[0];
      } catch {
        continue; // still being written
      }
      if (!id) continue;
      this.seen.add(name);
      this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    }
  }
}

describe('chaos: SIGKILL under sustained load', () => {
  it('loses no message answered 250; duplicates only for deliveries in flight at a kill', async () => {
    const acked = new Set<string>();
    const inFlightAtKill = new Set<string>();
    const state = { stopped: false, sent: 0 };
    const senders = Array.from({ length: SENDERS }, (_, i) => sender(i, acked, state));
    let kills = 0;
    let relay: RelayProcess | undefined;
    const started = Date.now();
    /** Slowest start (spawn to banner), in ms: a start must not grow with the backlog it finds. */
    let slowestStart = 0;
    const start = async (): Promise<RelayProcess> => {
      const begun = Date.now();
      const running = await startRelay(env);
      slowestStart = Math.max(slowestStart, Date.now() - begun);
      return running;
    };
    try {
      while (kills < MIN_KILLS || Date.now() - started < LOAD_SECONDS * 1000) {
        relay = await start();
        await sleep(1500 + Math.random() * 4500);
        relay.child.kill('SIGKILL');
        await relay.exited;
        kills += 1;
        for (const id of deliveriesInFlight()) inFlightAtKill.add(id);
      }
      // Last run: the load stops, the queue drains.
      relay = await start();
      await sleep(2000);
      state.stopped = true;
      await Promise.all(senders);
      const tally = new SinkTally();
      // The backlog left by the load drains at the relay's delivery rate.
      // It may take longer than DRAIN_MS while deliveries keep arriving (a fast ingress leaves a
      // large backlog); a message is lost only if nothing arrives for STALL_MS.
      const deadline = Date.now() + DRAIN_MS;
      const hardDeadline = Date.now() + DRAIN_CAP_MS;
      let lost: string[] = [...acked];
      let progressAt = Date.now();
      let delivered = 0;
      while (Date.now() < hardDeadline) {
        await tally.update();
        lost = [...acked].filter((id) => !tally.counts.has(id));
        if (lost.length === 0) break;
        if (tally.counts.size > delivered) {
          delivered = tally.counts.size;
          progressAt = Date.now();
        }
        if (Date.now() > deadline && Date.now() - progressAt > STALL_MS) break;
        await sleep(1000);
      }
      await sleep(1000);
      await tally.update();
      const duplicates = [...tally.counts].filter(([, count]) => count > 1).map(([id]) => id);
      const unexplained = duplicates.filter((id) => !inFlightAtKill.has(id));
      const unacknowledged = [...tally.counts.keys()].filter((id) => !acked.has(id)).length;
      const summary = {
        seconds: Math.round((Date.now() - started) / 1000),
        kills,
        sent: state.sent,
        acknowledged: acked.size,
        delivered: tally.counts.size,
        lost: lost.length,
        duplicates: duplicates.length,
        inFlightAtKills: inFlightAtKill.size,
        deliveredWithout250: unacknowledged,
        largestBacklog,
        slowestStartMs: slowestStart,
      };
      process.stdout.write(`chaos summary ${JSON.stringify(summary)}\n`);
      expect(acked.size).toBeGreaterThan(100);
      expect(lost, `acknowledged but never delivered: ${lost.slice(0, 10).join(', ')}`).toEqual([]);
      expect(unexplained, 'delivered twice although not in flight at any kill').toEqual([]);
    } finally {
      state.stopped = true;
      relay?.child.kill('SIGKILL');
      await relay?.exited;
    }
  }, LOAD_SECONDS * 1000 + DRAIN_CAP_MS + 180_000);
});
