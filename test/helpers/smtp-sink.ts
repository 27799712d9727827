// Starts Postfix's smtp-sink (Debian package postfix) on a free loopback port, dumping each mail
// transaction to its own file (-d), and reads the dumps back. smtp-sink writes lines with LF
// endings (it strips the CR) and undoes dot-stuffing, so `data` is the message with LF endings.
// Extra flags shape its answers, e.g. ['-r', 'RCPT'] (4xx to every RCPT), ['-f', 'RCPT'] (5xx).
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor, waitForGreeting } from './net.js';

const SMTP_SINK = '/usr/sbin/smtp-sink';

export interface SinkMessage {
  helo: string;
  /** MAIL FROM address without brackets; '' for the null sender. */
  mailFrom: string;
  rcptTo: string[];
  /** Header and body as received, with LF line endings. */
  data: Buffer;
}

export interface SmtpSink {
  port: number;
  dir: string;
  messages(): Promise<SinkMessage[]>;
  /** Resolves once `count` messages have been dumped (or rejects after `timeoutMs`). */
  waitForMessages(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  stop(): Promise<void>;
}

/** Parses one -d dump: smtp-sink's X-* records and three-line Received header, then the message. */
export function parseSinkDump(dump: Buffer): SinkMessage {
  let offset = 0;
  let helo = '';
  let mailFrom = '';
  const rcptTo: string[] = [];
  const angle = (value: string): string => /<([^>]*)>/.exec(value)?.[1] ?? value.trim();
  for (;;) {
    const end = dump.indexOf('\n', offset);
    if (end < 0) throw new Error('smtp-sink dump ended inside its own headers');
    const line = dump.subarray(offset, end).toString('utf8');
    offset = end + 1;
    if (line.startsWith('X-Helo-Args: ')) helo = line.slice('X-Helo-Args: '.length);
    else if (line.startsWith('X-Mail-Args: ')) mailFrom = angle(line.slice('X-Mail-Args: '.length));
    else if (line.startsWith('X-Rcpt-Args: ')) rcptTo.push(angle(line.slice('X-Rcpt-Args: '.length)));
    else if (line.startsWith('Received: ')) {
      // Its two continuation lines end smtp-sink's part.
      for (let i = 0; i < 2; i += 1) offset = dump.indexOf('\n', offset) + 1;
      break;
    }
  }
  // smtp-sink ends each dump with one empty line of its own.
  const data = dump.subarray(offset, dump.length - 1);
  return { helo, mailFrom, rcptTo, data };
}

/** `port`: listen there (a port the test reserved, e.g. a smarthost that was down until now); a free one otherwise. */
export async function startSmtpSink(options: { extraArgs?: string[]; port?: number } = {}): Promise<SmtpSink> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-sink-'));
  // smtp-sink drops to "nobody" when started as root, and nobody must write the dumps.
  await chmod(dir, 0o777);
  const port = options.port ?? (await freePort());
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const args = [...(asRoot ? ['-u', 'nobody'] : []), '-d', `${dir}/msg.`, ...(options.extraArgs ?? []), `127.0.0.1:${port}`, '64'];
  const child = spawn(SMTP_SINK, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`cannot start ${SMTP_SINK} (install Debian package postfix): ${error.message}`)));
  });
  await spawned;
  // A test file that ends without stop() (a failed set-up, a timeout) must not leave the sink behind.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  await waitForGreeting('smtp-sink', port, { gone: () => (child.exitCode === null ? undefined : `smtp-sink exited with ${child.exitCode}: ${stderr}`) });

  const messages = async (): Promise<SinkMessage[]> => {
    const names = (await readdir(dir)).filter((name) => name.startsWith('msg.')).sort();
    return Promise.all(names.map(async (name) => parseSinkDump(await readFile(join(dir, name)))));
  };

  return {
    port,
    dir,
    messages,
    async waitForMessages(count, timeoutMs = 10_000) {
      let held = 0;
      let sizesBefore = new Map<string, number>();
      // A dump being written (transaction in progress) may not parse yet, or parse with only part
      // of its message: a dump counts once its size is the same at two looks in a row (50 ms apart).
      const enough = async (): Promise<SinkMessage[] | undefined> => {
        const names = (await readdir(dir).catch(() => [])).filter((name) => name.startsWith('msg.')).sort();
        const sizes = new Map<string, number>();
        const whole: SinkMessage[] = [];
        for (const name of names) {
          const dump = await readFile(join(dir, name)).catch(() => undefined);
          if (!dump) continue;
          sizes.set(name, dump.length);
          if (sizesBefore.get(name) !== dump.length) continue;
          try {
            whole.push(parseSinkDump(dump));
          } catch {
            // Not even its own headers yet.
          }
        }
        sizesBefore = sizes;
        held = whole.length;
        return whole.length >= count ? whole : undefined;
      };
      return waitFor(`${count} messages at smtp-sink`, enough, timeoutMs).catch(() => {
        throw new Error(`smtp-sink holds ${held} messages, expected ${count}`);
      });
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
