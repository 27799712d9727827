// A deadline per line, against slowloris clients. smtp-server's socketTimeout is an idle timer:
// any byte restarts it, so a client that trickles one byte a second holds its session (and a
// slot of every cap) forever. As Postfix's smtpd_per_record_deadline does, a line that has begun
// (an SMTP command line, or a line of message content in DATA) must be complete within the
// socket timeout; otherwise the session gets 421 and is closed. Applied once at import to every
// smtp-server connection, after STARTTLS too (the TLS session gets a new parser).
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const LF = 0x0a;
const DEFAULT_SOCKET_TIMEOUT_MS = 60_000;

interface LineParser {
  isClosed?: boolean;
  _write(chunk: Buffer, encoding: BufferEncoding, next: (error?: Error | null) => void): void;
  emit(event: 'error', error: Error): boolean;
  once(event: 'finish' | 'close', listener: () => void): unknown;
}

interface ParserFactory {
  _server: { options: { socketTimeout?: number } };
  _createParser(): LineParser;
}

/** Watches `parser`'s input: a line begun and not ended within `deadlineMs` fails the parser (421, closed). */
export function watchLineDeadline(parser: LineParser, deadlineMs: number): void {
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const write = parser._write;
  parser._write = function (chunk, encoding, next) {
    if (chunk.length > 0) {
      const endsLine = chunk[chunk.length - 1] === LF;
      if (endsLine) stop();
      else if (chunk.includes(LF) || !timer) {
        // A new line began in this chunk: its clock starts now.
        stop();
        timer = setTimeout(() => {
          timer = undefined;
          if (parser.isClosed) return;
          parser.emit('error', new Error(`a line was not completed within ${Math.round(deadlineMs / 1000)} seconds; closing connection`));
        }, deadlineMs);
        timer.unref();
      }
    }
    return write.call(this, chunk, encoding, next);
  };
  parser.once('finish', stop);
  parser.once('close', stop);
}

const marker = Symbol.for('outpost.smtp-line-deadline');
const proto = SMTPConnection.prototype as unknown as ParserFactory & { [marker]?: boolean };

if (!proto[marker]) {
  proto[marker] = true;
  const createParser = proto._createParser;
  proto._createParser = function (this: ParserFactory) {
    const parser = createParser.call(this);
    watchLineDeadline(parser, this._server.options.socketTimeout || DEFAULT_SOCKET_TIMEOUT_MS);
    return parser;
  };
}

export {};
