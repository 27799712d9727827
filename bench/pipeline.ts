// Goal: the pipeline (accepted → scanned → DKIM-signed → delivered) of the single node moves
// at least 1,000 msg/s with the built-in rules and 200 msg/s with clamd + rspamd.
//
// Each round fills a fresh data folder with N accepted messages (2 KB, one recipient each, from
// one mailbox user with an RSA-2048 DKIM key): message file, log record and scan job, written
// through the same ports the ingress uses, so that the ingress takes no part in the time. Then
// the node starts and the clock runs until postfix's smtp-sink (the smarthost) has all N. The
// variants alternate round by round; the medians are compared with the goals. The rate is also
// given over the last 80 % of the messages alone, with the node's start (worker threads loading
// their modules) and its JIT warm-up behind it: a node runs for days. smtp-sink's own
// rate with postfix's smtp-source (20 sessions) is the ceiling of the machine, also measured.
//
//   npx tsx bench/pipeline.ts [--messages 2000] [--rounds 3] [--no-engines]
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { AcceptedMessage } from '../smtp-ec2/ingress.js';

process.env.OUTPOST_LOG_LEVEL ??= 'error';
const { startNode } = await import('../bin/single-node.js');
const { openLocalStores } = await import('../bin/local-stores.js');
const { parseConfig } = await import('../core/config.js');
const { createLogger } = await import('../core/log.js');
const { operatorToken, tlsMaterial } = await import('../adapters/local/secrets.js');
const { a, mx, startDnsServer } = await import('../test/helpers/dns-server.js');
const { startClamd } = await import('../test/helpers/clamd.js');
const { startRspamd } = await import('../test/helpers/rspamd.js');
const { threadCpuSeconds, threadRunqueueSeconds } = await import('./outpost-child.js');
const { openDatabase } = await import('../adapters/local/sqlite.js');
const { commitAccepted } = await import('../adapters/local/acceptance-batch.js');
const { SqliteMessageLog } = await import('../adapters/local/message-log.js');
const { SqliteQueue } = await import('../adapters/local/queue.js');
const { SqliteMessageBodies } = await import('../adapters/local/message-body-store.js');
const { BODY_2K, benchConfig, benchMailboxUser, line, median, startCountingSink } = await import('./support.js');

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' }, 'no-engines': { type: 'boolean', default: false } },
});
const N = Number(values.messages);
const ROUNDS = Number(values.rounds);
const GOALS: Record<string, number> = { 'built-in rules': 1000, 'clamd + rspamd': 200 };

type Sink = Awaited<ReturnType<typeof startCountingSink>>;
type Dns = Awaited<ReturnType<typeof startDnsServer>>;

function message(index: number): Buffer {
  return Buffer.from(
    [
      'From: Alice <alice@acme.test>',
      `To: rcpt${index}@example.org`,
      `Subject: Pipeline benchmark message ${index}`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <bench-${index}-${Date.now()}@acme.test>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      BODY_2K,
    ].join('\r\n'),
  );
}

/**
 * N messages as the ingress leaves them: each small body stored inline with its log record,
 * 'received' event and scan job, in the ingress's group commit (commitAccepted, as the acceptance
 * writer thread runs it; bodies over queue.inlineBodyBytes go to a file first, as the ingress
 * writes them), in batches of 20 (the bench's sessions).
 */
async function preload(config: ReturnType<typeof parseConfig>): Promise<void> {
  const stores = openLocalStores(config);
  const db = openDatabase(join(config.dataDir, 'outpost.db'));
  try {
    const user = await benchMailboxUser(stores, 'alice@acme.test', 'benchmark password');
    const log = new SqliteMessageLog(db);
    const queue = new SqliteQueue(db, { maxReceives: config.queue.maxReceives });
    const bodies = new SqliteMessageBodies(db);
    let batch: AcceptedMessage[] = [];
    for (let index = 0; index < N; index += 1) {
      const id = `BENCH${String(index).padStart(7, '0')}`;
      const raw = message(index);
      const blobKey = `messages/${id}`;
      const rcptTo = [`rcpt${index}@example.org`];
      const now = Date.now();
      const inline = raw.length <= config.queue.inlineBodyBytes;
      if (!inline) await stores.blobs.put(blobKey, raw);
      const envelope = { messageId: id, tenantId: user.tenantId, userId: user.id, identity: user.identity, mailFrom: 'alice@acme.test', rcptTo, blobKey, size: raw.length, receivedAt: now, clientIp: '127.0.0.1', helo: 'bench.acme.test' };
      batch.push({
        record: { id, tenantId: user.tenantId, userId: user.id, identity: user.identity, mailFrom: 'alice@acme.test', rcptTo, size: raw.length, subject: `Pipeline benchmark message ${index}`, status: 'queued', receivedAt: now },
        event: { name: 'received', detail: { clientIp: '127.0.0.1', via: 'auth', size: raw.length, rcptCount: 1, tls: true } },
        queue: 'scan',
        body: JSON.stringify(envelope),
        ...(inline ? { content: { blobKey, bytes: raw } } : {}),
      });
      if (batch.length === 20 || index === N - 1) {
        commitAccepted(db, log, queue, bodies, batch);
        batch = [];
      }
    }
  } finally {
    db.close();
    stores.close();
  }
  // Made now so that the timed start does not generate a certificate.
  await operatorToken(config.dataDir, undefined);
  await tlsMaterial(config.dataDir, config.hostname, {});
}

/** Share of the messages delivered before the steady rate's clock starts (the node's start and its JIT warm-up behind it). */
const STEADY_FROM = 0.2;

async function round(sink: Sink, dns: Dns, scanning: Record<string, unknown>): Promise<{ rate: number; steady: number; sessions: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'outpost-bench-pipeline-'));
  try {
    const config = benchConfig(dataDir, dns.address, sink.port, { scanning });
    await preload(config);
    const before = sink.received();
    const sessionsBefore = sink.sessions();
    const cpuBefore = threadCpuSeconds(process.pid);
    const waitBefore = threadRunqueueSeconds(process.pid);
    const started = performance.now();
    const node = await startNode(config, { logger: createLogger('bench', { level: 'error' }) });
    const firstPart = Math.floor(N * STEADY_FROM);
    await sink.waitFor(before + firstPart, 600_000);
    const steadyFrom = performance.now();
    await sink.waitFor(before + N, 600_000);
    const elapsed = performance.now() - started;
    const steady = ((N - firstPart) / (performance.now() - steadyFrom)) * 1000;
    reportThreads(cpuBefore, threadCpuSeconds(process.pid), elapsed, waitBefore, threadRunqueueSeconds(process.pid));
    await node.stop();
    // The sink counts a session when it ends: the ones kept for reuse end at stop.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { rate: (N / elapsed) * 1000, steady, sessions: sink.sessions() - sessionsBefore };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Where the round's CPU went, by thread of this process (the node runs in it): CPU time per
 * message, share of the round's wall time on a CPU, and share spent runnable but waiting for a
 * CPU (the machine's other threads and processes had both cores). A thread far below 100 % that
 * does not wait for a CPU either waits for I/O or for work.
 */
function reportThreads(before: Map<number, number>, after: Map<number, number>, elapsedMs: number, waitBefore: Map<number, number>, waitAfter: Map<number, number>): void {
  const rows = [...after]
    .map(([tid, seconds]) => ({ tid, seconds: seconds - (before.get(tid) ?? 0), waited: (waitAfter.get(tid) ?? 0) - (waitBefore.get(tid) ?? 0) }))
    .filter((row) => row.seconds > 0.01)
    .sort((x, y) => y.seconds - x.seconds);
  const total = rows.reduce((sum, row) => sum + row.seconds, 0);
  const share = (seconds: number) => `${((seconds * 100000) / elapsedMs).toFixed(0)} %`;
  const text = rows.map((row) => `${row.tid === process.pid ? 'main' : row.tid} ${((row.seconds * 1000) / N).toFixed(2)} ms/msg ${share(row.seconds)} (waiting for a CPU ${share(row.waited)})`);
  process.stdout.write(`  threads (CPU per message, share of the round on a CPU and waiting for one): ${text.join(', ')}; whole process ${((total * 1000) / N).toFixed(2)} ms/msg\n`);
}

async function sinkCeiling(sink: Sink): Promise<number> {
  const before = sink.received();
  const started = performance.now();
  await promisify(execFile)('/usr/sbin/smtp-source', ['-s', '20', '-m', String(N), '-l', '2048', '-f', 'alice@acme.test', '-t', 'rcpt@example.org', `127.0.0.1:${sink.port}`]);
  await sink.waitFor(before + N, 60_000);
  return (N / (performance.now() - started)) * 1000;
}

async function main(): Promise<void> {
  const sink = await startCountingSink();
  const dns = await startDnsServer({ 'acme.test': [a('127.0.0.1')], 'example.org': [mx(10, 'mx.example.org')], 'mx.example.org': [a('127.0.0.1')] });
  const variants: Array<[string, Record<string, unknown>]> = [['built-in rules', {}]];
  const daemons: Array<{ stop(): Promise<void> }> = [];
  if (values['no-engines']) {
    process.stdout.write('clamd + rspamd variant skipped (--no-engines)\n');
  } else {
    try {
      const clamd = await startClamd();
      daemons.push(clamd);
      const rspamd = await startRspamd();
      daemons.push(rspamd);
      variants.push(['clamd + rspamd', { clamd: `127.0.0.1:${clamd.port}`, rspamdUrl: rspamd.url }]);
    } catch (error: unknown) {
      process.stdout.write(`clamd + rspamd variant skipped: the engines did not start (${error instanceof Error ? error.message : String(error)})\n`);
    }
  }
  const rates = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const sessions = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const steadyRates = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const ceiling: number[] = [];
  try {
    for (let index = 0; index < ROUNDS; index += 1) {
      ceiling.push(await sinkCeiling(sink));
      for (const [name, scanning] of variants) {
        const result = await round(sink, dns, scanning);
        rates.get(name)?.push(result.rate);
        sessions.get(name)?.push(result.sessions);
        steadyRates.get(name)?.push(result.steady);
        process.stdout.write(`round ${index + 1}: ${name}: ${result.rate.toFixed(0)} msg/s over ${result.sessions} SMTP sessions (after the first ${STEADY_FROM * 100} %: ${result.steady.toFixed(0)} msg/s)\n`);
      }
    }
  } finally {
    for (const daemon of daemons) await daemon.stop();
    await sink.stop();
    await dns.stop();
  }
  const out = [`pipeline: ${N} messages of 2 KB, ${ROUNDS} alternating rounds, medians`];
  out.push(line('smtp-source → smtp-sink (machine ceiling)', `${median(ceiling).toFixed(0)} msg/s`));
  for (const [name] of variants) {
    const rate = median(rates.get(name) ?? []);
    const goal = GOALS[name] ?? 1;
    out.push(line(`Outpost pipeline, ${name}`, `${rate.toFixed(0)} msg/s, ${median(sessions.get(name) ?? []).toFixed(0)} sessions to the sink; ratio to goal ${goal}: ${(rate / goal).toFixed(2)}; to ceiling: ${(rate / median(ceiling)).toFixed(3)}`));
    out.push(line(`  the same after the first ${STEADY_FROM * 100} % delivered`, `${median(steadyRates.get(name) ?? []).toFixed(0)} msg/s (the node's start and warm-up behind it)`));
  }
  process.stdout.write(out.join('\n') + '\n');
}

await main();
