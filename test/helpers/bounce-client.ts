// The remote MTA that bounces, as the bounce tests play it: RFC 3464 reports about a message the
// node delivered, and raw sessions on the bounce listener where every byte and reply matters.
// `closed()` waits for the socket's real close event: a slow answer never reads as a disconnect.
import { connect, type Socket } from 'node:net';

export interface ReturnedMessage {
  /** The return path the node used (BATV-tagged). */
  mailFrom: string;
  /** The message as the MX received it (its header section is quoted). */
  data: Buffer;
}

export interface DsnOptions {
  /** The report's From; a forger puts the tenant's own domain here. */
  from?: string;
  /** Text of the human-readable part (where an attacker puts EICAR or spam). */
  text?: string;
}

/** An RFC 3464 report listing `recipients` as failed (5.1.1), with the original's headers. */
export function dsnFor(original: ReturnedMessage, recipients: string[], options: DsnOptions = {}): string {
  const boundary = 'dsn-boundary-7f3a';
  const raw = original.data.toString('latin1').replace(/\r?\n/g, '\r\n');
  const end = raw.indexOf('\r\n\r\n');
  const returnedHeaders = raw.slice(0, end < 0 ? raw.length : end);
  return [
    `From: ${options.from ?? 'Mail Delivery System <MAILER-DAEMON@mx.example.org>'}`,
    `To: ${original.mailFrom}`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <dsn-${Date.now()}-${Math.random().toString(36).slice(2)}@mx.example.org>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    options.text ?? `Your message could not be delivered to ${recipients.map((r) => `<${r}>`).join(', ')}: the mailbox does not exist.`,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.example.org',
    `Arrival-Date: ${new Date().toUTCString()}`,
    '',
    ...recipients.flatMap((recipient) => [
      `Final-Recipient: rfc822; ${recipient}`,
      'Action: failed',
      'Status: 5.1.1',
      `Diagnostic-Code: smtp; 550 5.1.1 <${recipient}>: mailbox unknown`,
      '',
    ]),
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    returnedHeaders,
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** A raw SMTP session that knows when the server really closed the connection. */
export class RawSession {
  private buffer = '';
  private ended = false;
  private readonly waiters: Array<() => void> = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<{ session: RawSession; greeting: string }> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const session = new RawSession(socket);
    return { session, greeting: await session.reply() };
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private async until<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined || this.ended || Date.now() > deadline) return found;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** One complete reply; throws when none comes (a closed connection is not a reply). */
  async reply(timeoutMs = 10_000): Promise<string> {
    const match = await this.until(() => /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buffer) ?? undefined, timeoutMs);
    if (!match) throw new Error(`no reply (${this.ended ? 'connection closed' : 'timeout'}); received so far: ${JSON.stringify(this.buffer)}`);
    this.buffer = this.buffer.slice(match[0].length);
    return match[0].trimEnd();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string | Buffer): Promise<string> {
    this.write(typeof line === 'string' ? `${line}\r\n` : Buffer.concat([line, Buffer.from('\r\n')]));
    return this.reply();
  }

  /** True once the server has closed the connection (waits up to `timeoutMs` for it). */
  async closed(timeoutMs = 5_000): Promise<boolean> {
    await this.until(() => (this.ended ? true : undefined), timeoutMs);
    return this.ended;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One bounce attempt: the answers to MAIL, RCPT and, if it got that far, DATA. */
export async function sendBounce(port: number, mailFrom: string, rcptTo: string, message?: string): Promise<{ mail: string; rcpt: string; data?: string }> {
  const { session, greeting } = await RawSession.open(port);
  try {
    if (!greeting.startsWith('220')) throw new Error(`expected a 220 greeting, got ${greeting}`);
    await session.command('EHLO mx.example.org');
    const mail = await session.command(`MAIL FROM:<${mailFrom}>`);
    const rcpt = await session.command(`RCPT TO:<${rcptTo}>`);
    if (message === undefined || !rcpt.startsWith('250')) return { mail, rcpt };
    const go = await session.command('DATA');
    if (!go.startsWith('354')) return { mail, rcpt, data: go };
    const stuffed = message.replace(/\r\n\./g, '\r\n..');
    const data = await session.command(`${stuffed.endsWith('\r\n') ? stuffed : `${stuffed}\r\n`}.`);
    await session.command('QUIT');
    return { mail, rcpt, data };
  } finally {
    session.close();
  }
}
