// The SMTP session fuzzer: many concurrent sessions against the real relay's three SMTP
// listeners, each a random walk through the protocol (EHLO, STARTTLS, AUTH with good and bad
// credentials, MAIL, RCPT with every address form, DATA with random MIME, RSET, junk), with
// commands mutated, pipelined, cut off, and the connection reset at random moments.
import { pause, RudeClient } from '../hostile/rude-client.js';
import { randomMessage } from './mime-fuzzer.js';
import { mutate } from './mutate.js';
import type { Prng } from './prng.js';

export interface SmtpTarget {
  ports: { submission: number; submissions: number; bounce: number };
  login: { user: string; password: string };
}

export interface SmtpFuzzStats {
  sessions: number;
  commands: number;
  resets: number;
  tlsSessions: number;
  messages: number;
}

const HOSTS = ['client.test', '[127.0.0.1]', '', 'x'.repeat(300), 'bad host', 'ünïcode.test', '[IPv6:::1]'];
const ADDRESSES = [
  'bob@example.org',
  'alice@acme.test',
  'user%other.test@example.org',
  'other.test!user@example.org',
  '@a.test,@b.test:user@example.org',
  '"quoted"@example.org',
  'user@[127.0.0.1]',
  'user@other.test@example.org',
  '',
  'postmaster',
  'prvs=1234567890=bob@acme.test',
  'nobody@nowhere.invalid',
  'a'.repeat(300) + '@example.org',
];

function base64(text: string): string {
  return Buffer.from(text).toString('base64');
}

/** The next command of a session, given whether a transaction is open. */
function command(rng: Prng, target: SmtpTarget): string {
  const { user, password } = target.login;
  const address = (): string => rng.pick(ADDRESSES);
  const candidates = [
    () => `EHLO ${rng.pick(HOSTS)}`,
    () => `HELO ${rng.pick(HOSTS)}`,
    () => 'STARTTLS',
    () => `AUTH PLAIN ${base64(`\0${user}\0${rng.chance(0.6) ? password : 'wrong password'}`)}`,
    () => `AUTH PLAIN ${rng.bytes(rng.int(0, 40)).toString('base64')}`,
    () => 'AUTH LOGIN',
    () => `AUTH CRAM-MD5`,
    () => `MAIL FROM:<${address()}>${rng.chance(0.3) ? rng.pick([' SIZE=100', ' SIZE=999999999999', ' BODY=8BITMIME', ' SMTPUTF8', ' RET=FULL ENVID=x+0D+0A', ' FOO']) : ''}`,
    () => `RCPT TO:<${address()}>${rng.chance(0.1) ? ' NOTIFY=NEVER' : ''}`,
    () => 'DATA',
    () => 'RSET',
    () => 'NOOP',
    () => `VRFY ${address()}`,
    () => 'HELP',
    () => 'QUIT',
    () => `BDAT ${rng.int(0, 100)} LAST`,
    () => `XCLIENT ADDR=10.0.0.${rng.int(0, 255)}`,
    () => rng.bytes(rng.int(1, 80)).toString('latin1'),
  ];
  return rng.pick(candidates)();
}

/** A message body for DATA: random MIME, sometimes with smuggling bytes, usually ended properly. */
function dataPayload(rng: Prng): string {
  let text = randomMessage(rng).toString('latin1');
  if (rng.chance(0.7)) text = text.replace(/^\./gm, '..');
  if (rng.chance(0.1)) text += rng.pick(['\n.\n', '\r.\r', '\r\n\x00.\r\n', '\n.\r\n']) + 'MAIL FROM:<alice@acme.test>\r\n';
  return rng.chance(0.9) ? `${text}\r\n.\r\n` : text;
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Half the sessions follow the protocol towards a message (EHLO, STARTTLS, EHLO, AUTH, MAIL,
 * RCPT, DATA), with random commands slipped in; the rest wander at random from the start.
 */
function plan(rng: Prng, target: SmtpTarget, listener: 'submission' | 'submissions' | 'bounce'): string[] {
  if (rng.chance(0.5)) return [];
  const { user, password } = target.login;
  const steps = ['EHLO client.test'];
  if (listener !== 'submissions') steps.push('STARTTLS', 'EHLO client.test');
  if (listener !== 'bounce') steps.push(`AUTH PLAIN ${base64(`\0${user}\0${password}`)}`);
  steps.push(listener === 'bounce' ? 'MAIL FROM:<>' : `MAIL FROM:<${user}>`);
  // A bounce is accepted for an untagged address of a served domain (bounceValidation is off).
  const usual = listener === 'bounce' ? user : 'bob@example.org';
  for (let i = rng.int(1, 3); i > 0; i--) steps.push(`RCPT TO:<${rng.chance(0.7) ? usual : rng.pick(ADDRESSES)}>`);
  steps.push('DATA');
  return steps.flatMap((step) => (rng.chance(0.1) ? [command(rng, target), step] : [step]));
}

async function session(rng: Prng, target: SmtpTarget, stats: SmtpFuzzStats): Promise<void> {
  const listener = rng.pick(['submission', 'submission', 'submission', 'submissions', 'bounce'] as const);
  let client: RudeClient;
  try {
    client = await RudeClient.connect(target.ports[listener]);
  } catch {
    return;
  }
  stats.sessions += 1;
  try {
    if (listener === 'submissions') {
      if (rng.chance(0.1)) return client.reset();
      const handshake = await withTimeout(client.tls().then(() => 'ok' as const, () => 'failed' as const), 3000);
      if (handshake !== 'ok') return client.reset();
      stats.tlsSessions += 1;
    }
    if (rng.chance(0.05)) client.write(`${command(rng, target)}\r\n`); // an early talker
    await client.until(/^\d{3} /m, 1500);
    const planned = plan(rng, target, listener);
    const steps = planned.length + rng.int(1, 20);
    for (let step = 0; step < steps && !client.isClosed; step++) {
      if (rng.chance(0.02)) {
        stats.resets += 1;
        return client.reset();
      }
      // The planned steps go as written: the commands slipped in between them do the damage.
      const guided = planned[step] !== undefined;
      let line = planned[step] ?? command(rng, target);
      if (!guided && rng.chance(0.15)) line = mutate(rng, line);
      if (!guided && rng.chance(0.15)) line = Array.from({ length: rng.int(2, 12) }, () => command(rng, target)).join('\r\n');
      const ending = guided || rng.chance(0.95) ? '\r\n' : rng.pick(['\n', '\r', '', '\r\r\n']);
      const seen = client.text.length;
      client.write(line + ending);
      stats.commands += 1;
      await client.more(seen, rng.chance(0.8) ? 300 : 20);
      const tail = client.text.slice(seen);
      if (/^STARTTLS/i.test(line) && /^220 /m.test(tail) && (guided || rng.chance(0.8))) {
        if (!guided && rng.chance(0.1)) return client.resetInTlsHandshake().then(() => void (stats.resets += 1));
        const handshake = await withTimeout(client.tls().then(() => 'ok' as const, () => 'failed' as const), 3000);
        if (handshake !== 'ok') return client.reset();
        stats.tlsSessions += 1;
      } else if (/^354 /m.test(tail)) {
        const payload = dataPayload(rng);
        if (rng.chance(0.05)) {
          client.write(payload.slice(0, rng.int(0, payload.length)));
          await pause(rng.int(0, 50));
          stats.resets += 1;
          return client.reset();
        }
        client.write(payload);
        stats.messages += 1;
        await client.until(/^(250|4\d\d|5\d\d) [^\r\n]*\r\n(?![\s\S])/m, 2000);
      } else if (/^334/m.test(tail) && rng.chance(0.7)) {
        client.write(`${rng.chance(0.5) ? base64(target.login.user) : rng.bytes(rng.int(0, 30)).toString('base64')}\r\n`);
      }
    }
    const end = rng.int(0, 3);
    if (end === 0) client.write('QUIT\r\n');
    else if (end === 1) client.end();
    else if (end === 2) {
      stats.resets += 1;
      client.reset();
    }
    // end === 3: abandon the connection; the server's timeouts must close it.
    await pause(10);
    if (end !== 3) client.reset();
  } catch {
    client.reset();
  }
}

/** Runs `concurrency` fuzz sessions at a time against `target` for `durationMs`. */
export async function fuzzSmtp(rng: Prng, target: SmtpTarget, durationMs: number, concurrency = 6): Promise<SmtpFuzzStats> {
  const stats: SmtpFuzzStats = { sessions: 0, commands: 0, resets: 0, tlsSessions: 0, messages: 0 };
  const deadline = Date.now() + durationMs;
  const worker = async (workerRng: Prng): Promise<void> => {
    while (Date.now() < deadline) await session(workerRng.fork(), target, stats);
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker(rng.fork())));
  return stats;
}
