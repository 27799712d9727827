// The MIME fuzzer: random MIME trees (multipart of every kind, message/rfc822, every transfer
// encoding, encoded words, RFC 2231 parameters, odd boundaries, sometimes deeper or wider than the
// scan caps), then mutated, through the scan stage's MIME path: the MIME caps, mailparser, the
// built-in spam rules and the fingerprints (scanMessage, as the scan handler calls it). Nothing
// may throw, and no message may come out as "retry" (a message that defers forever).
import { openDatabase } from '../../adapters/local/sqlite.js';
import { SqliteFingerprintStore } from '../../adapters/local/fingerprint-store.js';
import { BuiltinSpamRules } from '../../core/scan/builtin-rules.js';
import { scanMessage } from '../../core/scan/scan.js';
import { parseConfig } from '../../core/config.js';
import { userSettingsSchema } from '../../core/settings.js';
import type { Envelope } from '../../core/ports.js';
import { mutateMany } from './mutate.js';
import type { Prng } from './prng.js';

const TYPES = ['text/plain', 'text/html', 'application/octet-stream', 'image/png', 'application/zip', 'text/calendar'];
const ENCODINGS = ['7bit', '8bit', 'base64', 'quoted-printable', 'binary', 'x-uuencode', 'bogus'];
const CHARSETS = ['utf-8', 'iso-8859-1', 'us-ascii', 'utf-16', 'x-unknown', ''];

function encodedWord(rng: Prng, text: string): string {
  return rng.chance(0.5) ? `=?${rng.pick(CHARSETS) || 'utf-8'}?B?${Buffer.from(text).toString('base64')}?=` : `=?utf-8?Q?${text.replace(/ /g, '_')}?=`;
}

function boundary(rng: Prng, depth: number): string {
  return rng.pick([`b${depth}`, `----=_Part_${rng.int(0, 1e6)}`, 'x'.repeat(rng.int(1, 200)), '', `b${depth}; x="y"`, `"${depth}"`, '--', `b\t${depth}`]);
}

function leaf(rng: Prng): string {
  const type = rng.pick(TYPES);
  const encoding = rng.pick(ENCODINGS);
  const raw = rng.chance(0.3) ? rng.bytes(rng.int(0, 2000)).toString('latin1') : `Hello ${'word '.repeat(rng.int(0, 200))}`;
  const body = encoding === 'base64' ? Buffer.from(raw, 'latin1').toString('base64').replace(/.{76}/g, '$&\r\n') : raw;
  const name = rng.chance(0.3) ? `; name*=utf-8''${encodeURIComponent('naïve file.txt')}` : rng.chance(0.3) ? `; name="${encodedWord(rng, 'report.pdf')}"` : '';
  const disposition = rng.chance(0.4) ? `\r\nContent-Disposition: ${rng.pick(['attachment', 'inline', 'bogus'])}; filename="f${rng.int(0, 99)}.${rng.pick(['txt', 'exe', 'zip', ''])}"` : '';
  return `Content-Type: ${type}; charset="${rng.pick(CHARSETS)}"${name}\r\nContent-Transfer-Encoding: ${encoding}${disposition}\r\n\r\n${body}`;
}

/** One MIME entity (headers and body), `depth` levels below the top, using `budget` to bound the tree. */
function entity(rng: Prng, depth: number, budget: { parts: number; maxDepth: number }): string {
  budget.parts -= 1;
  if (depth >= budget.maxDepth || budget.parts <= 0 || rng.chance(0.35)) return leaf(rng);
  if (rng.chance(0.15)) return `Content-Type: message/rfc822\r\n\r\nFrom: inner@example.org\r\nSubject: ${encodedWord(rng, 'inner')}\r\n${entity(rng, depth + 1, budget)}`;
  const mark = boundary(rng, depth);
  const children = rng.int(0, rng.chance(0.05) ? 800 : 6);
  const parts: string[] = [];
  for (let i = 0; i < children && budget.parts > 0; i++) parts.push(`--${mark}\r\n${entity(rng, depth + 1, budget)}`);
  const close = rng.chance(0.85) ? `\r\n--${mark}--\r\n` : '';
  return `Content-Type: multipart/${rng.pick(['mixed', 'alternative', 'related', 'signed', 'digest', 'report'])}; boundary="${mark}"\r\n\r\n${rng.chance(0.2) ? 'preamble\r\n' : ''}${parts.join('\r\n')}${close}`;
}

/** A whole message: top headers, sometimes odd ones, then a MIME tree, then perhaps mutated. */
export function randomMessage(rng: Prng): Buffer {
  const budget = { parts: rng.chance(0.05) ? 3000 : 60, maxDepth: rng.chance(0.05) ? 200 : 8 };
  const headers = [
    `From: ${rng.chance(0.2) ? encodedWord(rng, 'Alice') + ' ' : ''}<alice@acme.test>`,
    ...(rng.chance(0.1) ? ['From: other@example.org'] : []),
    `To: bob@example.org`,
    `Subject: ${rng.chance(0.5) ? encodedWord(rng, 'fuzz subject') : 'fuzz'}`,
    ...(rng.chance(0.8) ? [`Date: ${new Date(rng.int(0, 2e12)).toUTCString()}`] : []),
    ...(rng.chance(0.8) ? [`Message-ID: <${rng.int(0, 1e9)}@fuzz.test>`] : []),
    'MIME-Version: 1.0',
  ];
  let text = `${headers.join('\r\n')}\r\n${entity(rng, 0, budget)}\r\n`;
  if (rng.chance(0.4)) text = mutateMany(rng, text, rng.int(1, 6));
  return Buffer.from(text, 'latin1');
}

export interface MimeFuzzStats {
  messages: number;
  verdicts: Record<string, number>;
  /** The message that took longest through the path (its number in this run, size, time). */
  slowest: { message: number; bytes: number; ms: number };
}

/** Runs the MIME path on random messages until `durationMs` has passed; throws on the first finding, naming the message number. */
export async function fuzzMime(rng: Prng, durationMs: number): Promise<MimeFuzzStats> {
  // A parser that never finishes costs two seconds here (and ends as a malformed verdict).
  const scanning = { ...parseConfig({ dataDir: '/tmp/outpost-fuzz' }).scanning, engineTimeoutMs: 2000 };
  const settings = userSettingsSchema.parse({});
  // Bulk sightings pile up in the fingerprint store until housekeeping removes them: a fresh store
  // every 500 messages stands for housekeeping, so that only what the MIME path keeps counts.
  let db = openDatabase(':memory:');
  const deps = { spamEngine: new BuiltinSpamRules(scanning.builtinRules), fingerprints: new SqliteFingerprintStore(db), clock: { now: () => Date.now() }, scanning };
  const stats: MimeFuzzStats = { messages: 0, verdicts: {}, slowest: { message: -1, bytes: 0, ms: 0 } };
  const deadline = Date.now() + durationMs;
  try {
    while (Date.now() < deadline) {
      if (stats.messages > 0 && stats.messages % 500 === 0) {
        db.close();
        db = openDatabase(':memory:');
        deps.fingerprints = new SqliteFingerprintStore(db);
      }
      const raw = randomMessage(rng);
      const envelope: Envelope = {
        messageId: `fuzz-${stats.messages}`,
        tenantId: 't',
        userId: 'u',
        identity: 'alice@acme.test',
        mailFrom: 'alice@acme.test',
        rcptTo: ['bob@example.org'],
        blobKey: 'fuzz',
        size: raw.length,
        receivedAt: Date.now(),
        clientIp: '127.0.0.1',
        helo: 'fuzz.test',
      };
      let outcome;
      const started = Date.now();
      try {
        outcome = await scanMessage(raw, envelope, settings, deps);
      } catch (error: unknown) {
        throw new Error(`MIME fuzz message ${stats.messages} (${raw.length} bytes) made scanMessage throw: ${error instanceof Error ? error.stack : String(error)}`);
      }
      if (outcome.verdict.action === 'retry') {
        throw new Error(`MIME fuzz message ${stats.messages} (${raw.length} bytes) would be retried forever: ${JSON.stringify(outcome.verdict.symbols)}`);
      }
      const ms = Date.now() - started;
      if (ms > stats.slowest.ms) stats.slowest = { message: stats.messages, bytes: raw.length, ms };
      stats.messages += 1;
      const key = `${outcome.verdict.action}:${outcome.verdict.kind}`;
      stats.verdicts[key] = (stats.verdicts[key] ?? 0) + 1;
      // Let timers and I/O run between messages.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    db.close();
  }
  return stats;
}
