// A real SMTP server (smtp-server) on a free loopback port for answers smtp-sink cannot give:
// a chosen reply for chosen recipients (550 for one of two, 451 for another), and the exact
// bytes received (smtp-server hands over DATA with CRLF kept and dot-stuffing undone).
// STARTTLS is offered with smtp-server's built-in self-signed certificate, as on many real MXs.
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { waitFor } from './net.js';

export interface MxAnswer {
  /** SMTP reply code, e.g. 550 or 451. */
  code: number;
  /** Reply text after the code, including the enhanced status, e.g. "5.1.1 No such user". */
  text: string;
}

export interface ReceivedMail {
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  data: Buffer;
  /** Whether the session had switched to TLS (STARTTLS) before DATA. */
  secure: boolean;
}

export interface TestMx {
  port: number;
  received: ReceivedMail[];
  /** Every RCPT TO the server saw, accepted or not, in order. */
  rcptAttempts: string[];
  /** Every MAIL FROM the server saw, and whether the session was under TLS then. */
  mailFromAttempts: Array<{ address: string; secure: boolean }>;
  waitForMail(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  stop(): Promise<void>;
}

export interface TestMxOptions {
  /** The answer for a recipient; undefined accepts it. */
  rcptAnswer?: (address: string) => MxAnswer | undefined;
  /** The answer after DATA; undefined accepts the message. */
  dataAnswer?: (mail: ReceivedMail) => MxAnswer | undefined;
  /** Key and certificate for STARTTLS; default smtp-server's built-in self-signed one. */
  tls?: { key: string; cert: string };
  /** Do not offer STARTTLS at all. */
  noStartTls?: boolean;
}

function smtpError(answer: MxAnswer): Error {
  return Object.assign(new Error(answer.text), { responseCode: answer.code });
}

export async function startTestMx(options: TestMxOptions = {}): Promise<TestMx> {
  const received: ReceivedMail[] = [];
  const rcptAttempts: string[] = [];
  const mailFromAttempts: Array<{ address: string; secure: boolean }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: options.noStartTls ? ['AUTH', 'STARTTLS'] : ['AUTH'],
    disableReverseLookup: true,
    logger: false,
    // At stop, sessions a client keeps open for reuse get 421 and are closed soon, as a real MX does.
    closeTimeout: 100,
    size: 50 * 1024 * 1024,
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
    onMailFrom(address, session, callback) {
      mailFromAttempts.push({ address: address.address, secure: session.secure });
      callback();
    },
    onRcptTo(address, _session, callback) {
      rcptAttempts.push(address.address);
      const answer = options.rcptAnswer?.(address.address);
      callback(answer ? smtpError(answer) : undefined);
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const mailFrom = session.envelope.mailFrom;
        const mail: ReceivedMail = {
          helo: session.hostNameAppearsAs,
          mailFrom: mailFrom === false ? '' : mailFrom.address,
          rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          data: Buffer.concat(chunks),
          secure: session.secure,
        };
        const answer = options.dataAnswer?.(mail);
        if (answer) return callback(smtpError(answer));
        received.push(mail);
        callback();
      });
    },
  });
  // A client that drops the session mid-handshake (a certificate it refused) must not end the test process.
  server.on('error', () => undefined);
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
  return {
    port,
    received,
    rcptAttempts,
    mailFromAttempts,
    waitForMail: (count, timeoutMs = 10_000) =>
      waitFor(`${count} messages at the test MX`, async () => (received.length >= count ? received : undefined), { timeoutMs, intervalMs: 25 }).catch(() => {
        throw new Error(`test MX received ${received.length} messages, expected ${count}`);
      }),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
