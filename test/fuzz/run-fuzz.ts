// One fuzz run, bounded by time: the SMTP fuzzer against the real `outpost start` in a child
// process, then the MIME fuzzer in this process. It fails, naming the seed to replay it with
// (OUTPOST_FUZZ_SEED), when the relay exits, logs an unhandled rejection or a failed session,
// stops relaying an ordinary message, or grows its resident memory by more than 100 MB.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { outpost } from '../helpers/relay-process.js';
import { METRICS_TOKEN, startRelayUnderTest } from '../hostile/relay-under-test.js';
import { fuzzMime, type MimeFuzzStats } from './mime-fuzzer.js';
import { Prng } from './prng.js';
import { fuzzSmtp, type SmtpFuzzStats } from './smtp-fuzzer.js';

export const MAX_RSS_GROWTH_BYTES = 100 * 1024 * 1024;
const FUZZ_USER = 'fuzz@acme.test';
const FUZZ_PASSWORD = 'fuzz password 123';

export interface FuzzReport {
  seed: number;
  smtp: SmtpFuzzStats;
  mime: MimeFuzzStats;
  relayRss: { start: number; end: number };
  /** Heap and buffers of this process around the MIME fuzzer, after a full collection. */
  fuzzerMemory: { start: number; end: number };
}

/** Resident memory of a process, from /proc (Linux). */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** A full garbage collection of this process, so that resident memory shows what is still held. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc === 'function') gc();
}

export class FuzzFailure extends Error {
  constructor(
    readonly seed: number,
    cause: unknown,
  ) {
    super(`fuzz run with seed ${seed} failed (replay: OUTPOST_FUZZ_SEED=${seed}): ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
  }
}

export async function runFuzz(options: { seed: number; smtpMs: number; mimeMs: number; progress?: (line: string) => void }): Promise<FuzzReport> {
  const { seed } = options;
  const progress = options.progress ?? (() => undefined);
  const rng = new Prng(seed);
  // No volume limits or automatic locks: the fuzz user must keep reaching DATA for the whole run.
  const relay = await startRelayUnderTest({
    smtp: { socketTimeoutSeconds: 2 },
    defaults: { mailsPerMinute: 0, mailsPerHour: 0, maxRecipientsPerDay: 0, invalidRecipientLimit: 0, autoLock: false },
  });
  try {
    await outpost(relay.env, ['user', 'add', '--tenant', 'acme', FUZZ_USER, '--password-stdin'], FUZZ_PASSWORD + '\n');
    const pid = relay.relay.child.pid;
    if (pid === undefined) throw new Error('the relay has no pid');
    // Warm up (first TLS handshakes, first message through the pipeline) before the baseline.
    await relay.proveHealthy('fuzz warm-up');
    const relayStart = rssOf(pid);
    progress(`seed ${seed}: SMTP fuzzing for ${Math.round(options.smtpMs / 1000)} s; relay RSS ${Math.round(relayStart / 1e6)} MB`);
    const smtp = await fuzzSmtp(rng.fork(), { ports: relay.ports, login: { user: FUZZ_USER, password: FUZZ_PASSWORD } }, options.smtpMs);
    // Abandoned sessions end at the socket timeout (2 s here); then no session may be left over.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const metrics = await (await fetch(`http://127.0.0.1:${relay.ports.http}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    const active = /^outpost_smtp_sessions_active (\d+)$/m.exec(metrics)?.[1];
    if (active !== '0') throw new Error(`${active ?? 'no'} SMTP sessions still open after the fuzz sessions ended (a leak)`);
    await relay.proveHealthy('fuzz done');
    const relayEnd = rssOf(pid);
    progress(`SMTP: ${JSON.stringify(smtp)}; relay RSS ${Math.round(relayEnd / 1e6)} MB`);
    if (relayEnd - relayStart > MAX_RSS_GROWTH_BYTES) throw new Error(`the relay's resident memory grew by ${Math.round((relayEnd - relayStart) / 1e6)} MB (from ${relayStart} to ${relayEnd} bytes)`);

    // The relay's RSS above covers the MIME path as it runs in production (every message the SMTP
    // fuzzer got accepted was scanned there). In this process, RSS also holds the test runner and
    // the allocator's high-water marks, which rise and fall by 200 MB over a few large messages
    // while no object is kept: here what the MIME path keeps is measured, on the heap and in
    // buffers, after a full collection.
    const held = (): number => {
      collectGarbage();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.external;
    };
    const fuzzerStart = held();
    const mime = await fuzzMime(rng.fork(), options.mimeMs);
    const fuzzerEnd = held();
    progress(`MIME: ${JSON.stringify(mime)}; heap and buffers ${Math.round(fuzzerStart / 1e6)} → ${Math.round(fuzzerEnd / 1e6)} MB`);
    if (fuzzerEnd - fuzzerStart > MAX_RSS_GROWTH_BYTES) throw new Error(`the MIME path kept ${Math.round((fuzzerEnd - fuzzerStart) / 1e6)} MB more after the run`);
    relay.assertAlive();
    return { seed, smtp, mime, relayRss: { start: relayStart, end: relayEnd }, fuzzerMemory: { start: fuzzerStart, end: fuzzerEnd } };
  } catch (error: unknown) {
    throw new FuzzFailure(seed, error);
  } finally {
    await relay.stop();
  }
}
