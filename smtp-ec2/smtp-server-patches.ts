// Narrow behaviour changes to smtp-server's connection, applied once at import:
//
// 1. EHLO does not advertise AUTH before TLS on a listener that requires TLS for AUTH
//    (smtp-server lists AUTH even when it would answer 538). RFC 4954 §4 / RFC 3207: clients
//    must not be invited to send credentials in plaintext.
// 2. A bare LF (or a CR not followed by LF) in a command line ends the session with 421
//    (as Postfix's smtpd_forbid_bare_newline does): smtp-server splits commands on /\r?\n/, and
//    bare line endings are how SMTP smuggling desynchronises two servers' view of a session.
// 3. A reply text that starts with an enhanced status code ("5.7.1 ...") keeps that code:
//    smtp-server otherwise derives one from the basic code alone (550 -> 5.1.1), which would tell
//    a client that a policy refusal was an unknown mailbox.
// 4. A RCPT TO whose <address> smtp-server's parser refuses (`bob@@example.org`) is shown to the
//    server's malformed-recipient handler, if one is registered (`onMalformedRcpt`), before the
//    501: smtp-server never calls onRcptTo for it, so the ingress could not count it towards the
//    sender's invalid recipient limit. The handler only answers; the address is never accepted.
// 5. A command line holding a NUL is refused with 550 5.6.0 and not executed (RFC 5321 §4.1.1.4
//    forbids NUL in SMTP text): smtp-server would pass it to the handlers, and a server that
//    drops NULs reads a different command than we did. NUL in DATA is the DataInspector's.
// 6. The pause before the greeting is the server's own (`setGreetingDelay`), not smtp-server's
//    fixed 100 ms: a client that talks during the pause is still answered 421 "You talk too
//    soon", but a listener may send its greeting at once (0), since the pause caps how many new
//    connections a second a listener serves (20 sessions, one message each: 200 messages/s).
// 7. A session's id (80 random bits, the key of the ingress's per-session state) is drawn from the
//    pooled CSPRNG (core/random-pool.ts) on a listener that takes no PROXY header: smtp-server
//    calls crypto.randomBytes(10) for every connection, a call into OpenSSL of its own (1.6 % of
//    the relay's thread with a new connection per message). Same form: 16 characters of base 32.
// 8. After QUIT the socket is closed as soon as the 221 and our end of the stream are flushed
//    (RFC 5321 §4.1.1.10: the server closes the channel once it has replied), as Postfix does.
//    smtp-server kept reading until the client's own FIN, or 5 s: a client that resets instead
//    (most bulk senders) then cost an ECONNRESET error with its stack trace, and a client that
//    keeps its side open held the descriptor and the session's state until the timer. Only after
//    QUIT: smtp-server's other closes (a 421, a refused connection) keep reading until the client
//    closes (a lingering close), since closing a socket whose client sent more than we read makes
//    the kernel answer with a reset, which can discard the refusal before the client reads it; a
//    client that sends after QUIT has no reply left to lose.
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { pooledRandomBytes } from '../core/random-pool.js';

const ENHANCED_PREFIX = /^([245]\.\d{1,3}\.\d{1,3}) ([\s\S]*)$/;

interface PatchableConnection {
  secure: boolean;
  _server: SMTPServer & { connections: Set<unknown>; options: { authMethods: string[]; allowInsecureAuth?: boolean; hideSTARTTLS?: boolean; maxClients?: number } };
  _useEnhancedStatusCodes(): boolean;
  _getEnhancedStatusCode?: (code: number, context?: unknown) => string;
  handler_EHLO(command: Buffer, callback: () => void): void;
  handler_RCPT(command: Buffer, callback: () => void): void;
  _parseAddressCommand(name: string, command: Buffer): unknown;
  _onCommand(command: Buffer, callback?: () => void): void;
  init(): void;
  connectionReady(): void;
  _setListeners(callback: () => void): void;
  name: string;
  _whenWritable(next: () => void): void;
  _upgrading?: boolean;
  _ready?: boolean;
  _nextHandler?: unknown;
  session: SMTPServerSession;
  send(code: number, data?: string | string[], context?: unknown): void;
  handler_QUIT(command: Buffer, callback: () => void): void;
  _socket: import('node:net').Socket;
}

interface PatchableServer {
  options: { ignoredHosts?: string[] };
  _expectsProxyHeader(socket: { remoteAddress?: string }): boolean;
  _handleProxy(socket: { remoteAddress?: string }, callback: (error: Error | null, options?: { id: string; ignore?: boolean }) => void): void;
}

/** A session id as smtp-server makes it (80 random bits in base 32, 16 characters), from the pool. */
function newSessionId(): string {
  return BigInt(`0x${pooledRandomBytes(10).toString('hex')}`)
    .toString(32)
    .padStart(16, '0');
}

interface PatchableStream {
  _dataMode: boolean;
  _remainder?: string;
  _write(chunk: Buffer, encoding: BufferEncoding, next: (error?: Error | null) => void): void;
}

/** LF without CR before it, or CR followed by anything but LF (a trailing CR may be half a CRLF). */
const BARE_LINE_ENDING = /(^|[^\r])\n|\r[^\n]/;

/** Answers a malformed recipient: an error with `responseCode` is sent as the reply; no error leaves smtp-server's own 501. */
export type MalformedRcptHandler = (address: string, session: SMTPServerSession, callback: (error?: Error & { responseCode?: number }) => void) => void;

const malformedRcptHandlers = new WeakMap<SMTPServer, MalformedRcptHandler>();
const greetingDelays = new WeakMap<SMTPServer, number>();

/** Pauses `server`'s greeting by `ms` milliseconds (0: greets at once); a client that talks first gets 421. */
export function setGreetingDelay(server: SMTPServer, ms: number): void {
  greetingDelays.set(server, ms);
}

/** Shows `server`'s malformed RCPT TO addresses (in an open transaction) to `handler` before they are refused. */
export function onMalformedRcpt(server: SMTPServer, handler: MalformedRcptHandler): void {
  malformedRcptHandlers.set(server, handler);
}

/** The text between the brackets of `RCPT TO:<...>`, as smtp-server splits the command. */
const RCPT_ADDRESS = /^RCPT TO\s*:\s*<([^<>]*)>/i;

const marker = Symbol.for('outpost.smtp-server-patched');
const proto = SMTPConnection.prototype as unknown as PatchableConnection & { [marker]?: boolean };

if (!proto[marker]) {
  proto[marker] = true;

  const originalInit = proto.init;
  proto.init = function (this: PatchableConnection) {
    const delay = greetingDelays.get(this._server);
    if (delay === undefined) return originalInit.call(this);
    // smtp-server's init, with the server's pause instead of its fixed 100 ms.
    this._setListeners(() => {
      const { maxClients } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
      }
      if (delay <= 0) return this.connectionReady();
      setTimeout(() => this.connectionReady(), delay).unref();
    });
  };

  const originalEhlo = proto.handler_EHLO;
  proto.handler_EHLO = function (this: PatchableConnection, command, callback) {
    const options = this._server.options;
    if (this.secure || options.allowInsecureAuth || options.hideSTARTTLS) {
      return originalEhlo.call(this, command, callback);
    }
    // handler_EHLO reads authMethods synchronously, so swapping it for the call is safe.
    const methods = options.authMethods;
    options.authMethods = [];
    try {
      return originalEhlo.call(this, command, callback);
    } finally {
      options.authMethods = methods;
    }
  };

  const originalRcpt = proto.handler_RCPT;
  proto.handler_RCPT = function (this: PatchableConnection, command, callback) {
    const handler = malformedRcptHandlers.get(this._server);
    if (!handler || !this.session.envelope.mailFrom || this._parseAddressCommand('rcpt to', command)) {
      return originalRcpt.call(this, command, callback);
    }
    const address = RCPT_ADDRESS.exec(command.toString().trim())?.[1];
    if (!address) return originalRcpt.call(this, command, callback);
    handler(address, this.session, (error) => {
      if (!error) return originalRcpt.call(this, command, callback);
      this.send(error.responseCode ?? 501, error.message);
      callback();
    });
  };

  const originalOnCommand = proto._onCommand;
  proto._onCommand = function (this: PatchableConnection, command, callback) {
    // Lines that arrive during the TLS handshake, or before the greeting, are smtp-server's to drop.
    if (this._upgrading || !this._ready || !command.includes(0)) return originalOnCommand.call(this, command, callback);
    // An AUTH exchange in progress ends here: its next line would otherwise be read as a credential.
    this._nextHandler = false;
    this.send(550, '5.6.0 NUL character in a command; SMTP commands are text');
    setImmediate(() => this._whenWritable(callback ?? (() => undefined)));
  };

  const streamProto = SMTPStream.prototype as unknown as PatchableStream;
  const originalWrite = streamProto._write;
  streamProto._write = function (this: PatchableStream, chunk, encoding, next) {
    if (!this._dataMode) {
      const text = (this._remainder ?? '') + chunk.toString('latin1');
      if (BARE_LINE_ENDING.test(text)) {
        return next(new Error('bare LF or CR in a command; SMTP lines must end with CRLF'));
      }
    }
    return originalWrite.call(this, chunk, encoding, next);
  };

  const originalSend = proto.send;
  proto.send = function (this: PatchableConnection, code, data, context) {
    const match = typeof data === 'string' ? ENHANCED_PREFIX.exec(data) : null;
    // A server that hides enhanced codes (smtp-server's default) sends the text as given, code
    // included, as unpatched smtp-server does: the patch applies to every server in the process.
    if (!match || !match[1] || !this._useEnhancedStatusCodes()) return originalSend.call(this, code, data, context);
    const enhanced = match[1];
    this._getEnhancedStatusCode = () => enhanced;
    try {
      return originalSend.call(this, code, match[2], context);
    } finally {
      delete this._getEnhancedStatusCode;
    }
  };

  const originalQuit = proto.handler_QUIT;
  proto.handler_QUIT = function (this: PatchableConnection, command, callback) {
    originalQuit.call(this, command, callback);
    const socket = this._socket;
    if (socket.destroyed) return;
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  };

  const serverProto = SMTPServer.prototype as unknown as PatchableServer;
  const originalHandleProxy = serverProto._handleProxy;
  serverProto._handleProxy = function (this: PatchableServer, socket, callback) {
    // A PROXY header to read first: smtp-server's own path, whole.
    if (this._expectsProxyHeader(socket)) return originalHandleProxy.call(this, socket, callback);
    const options = { id: newSessionId(), ignore: this.options.ignoredHosts?.includes(socket.remoteAddress ?? '') };
    setImmediate(() => callback(null, options));
  };
}

export {};
