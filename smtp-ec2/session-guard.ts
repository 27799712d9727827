// Keeps one client's trouble inside its own session. smtp-server reports socket errors (a reset
// during the TLS handshake, a timeout, a client vanishing in DATA) as 'error' events on the
// server: with no listener, Node ends the process, so one rude packet would stop all mail. And an
// exception thrown while a session handles a command would escape through the socket's 'data'
// event and end the process too. Here every listener gets an 'error' listener that logs, and an
// exception in a session closes that session only (421 4.3.0), logged with the session id.
import type { SMTPServer, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { errorMessage } from '../core/log.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { Logger } from '../core/ports.js';

/** Socket errors that only say the client went away or misbehaved; logged at info level. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_TLS_HANDSHAKE_TIMEOUT', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ECONNECTION', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'SocketClosed', 'SocketError']);

export interface ListenerGuard {
  /** Which listener, for the logs: submission, submissions, bounce. */
  listener: string;
  logger: Logger;
  metrics?: MetricRecorder;
}

/** A property of an error object of unknown shape, if it is a string. */
function stringField(value: unknown, key: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field: unknown = Reflect.get(value, key);
  return typeof field === 'string' ? field : undefined;
}

/** Where an error came from and what it was, without anything the client sent. */
function describeError(error: unknown): { code: string; error: string; clientIp?: string; stage?: string } {
  const meta: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'meta') : undefined;
  const clientIp = stringField(error, 'remoteAddress') ?? stringField(meta, 'remoteAddress');
  const stage = stringField(meta, 'stage');
  return { code: stringField(error, 'code') ?? 'UNKNOWN', error: errorMessage(error), ...(clientIp ? { clientIp } : {}), ...(stage ? { stage } : {}) };
}

/**
 * Logs every error the server reports instead of letting it end the process. A listen error at
 * start-up still reaches listenSmtp's own listener, which rejects.
 */
export function logListenerErrors(server: SMTPServer, guard: ListenerGuard): void {
  server.on('error', (error: unknown) => {
    const fields = describeError(error);
    // The listener's own socket (a port in use, no permission): not a client's; listen() rejects too.
    if (typeof error === 'object' && error !== null && 'syscall' in error && error.syscall === 'listen') {
      guard.logger.error('listener cannot open its port', { listener: guard.listener, ...fields });
      return;
    }
    guard.metrics?.inc('outpost_smtp_connection_errors_total', { listener: guard.listener, code: fields.code });
    const level = CLIENT_GONE.has(fields.code) ? 'info' : 'warn';
    guard.logger[level]('client connection error', { listener: guard.listener, ...fields });
  });
}

/** Told about an exception that escaped a session's command handling; the session is closed after it. */
export type SessionFailureHandler = (error: unknown, session: SMTPServerSession | undefined, where: string) => void;

const failureHandlers = new WeakMap<SMTPServer, SessionFailureHandler>();

/** Logs (through `handler`) an exception in one of `server`'s sessions, which is then closed with 421. */
export function onSessionFailure(server: SMTPServer, handler: SessionFailureHandler): void {
  failureHandlers.set(server, handler);
}

type Callback = (error?: Error | null, ...rest: never[]) => void;

/** The 421 a session gets when it is closed because of an exception on our side. */
export function sessionFailureReply(): Error & { responseCode: number } {
  return Object.assign(new Error('4.3.0 Temporary local problem; closing this session, please try again'), { responseCode: 421 });
}

/**
 * Wraps the hooks of smtp-server options: an exception thrown by a hook is logged through
 * `onFailure` and answered with 421 4.3.0, which closes that session; a second call of a hook's
 * callback is ignored.
 */
export function guardHooks(options: SMTPServerOptions, onFailure: SessionFailureHandler): SMTPServerOptions {
  const guarded: SMTPServerOptions = { ...options };
  const names = ['onConnect', 'onSecure', 'onAuth', 'onMailFrom', 'onRcptTo', 'onData'] as const;
  for (const name of names) {
    const hook = options[name] as ((...args: unknown[]) => void) | undefined;
    if (!hook) continue;
    const wrapped = (...args: unknown[]): void => {
      const session = args.find(isSession);
      const last = args[args.length - 1];
      if (typeof last !== 'function') return hook(...args);
      let answered = false;
      const once: Callback = (...reply) => {
        if (answered) return;
        answered = true;
        (last as Callback)(...reply);
      };
      try {
        hook(...args.slice(0, -1), once);
      } catch (error: unknown) {
        onFailure(error, session, name);
        once(sessionFailureReply());
      }
    };
    Object.assign(guarded, { [name]: wrapped });
  }
  const onClose = options.onClose;
  if (onClose) {
    guarded.onClose = (session, server) => {
      try {
        onClose(session, server);
      } catch (error: unknown) {
        onFailure(error, session, 'onClose');
      }
    };
  }
  return guarded;
}

function isSession(value: unknown): value is SMTPServerSession {
  return typeof value === 'object' && value !== null && 'id' in value && 'envelope' in value;
}

interface GuardedConnection {
  _server: SMTPServer;
  session?: SMTPServerSession;
  _onCommand(command: Buffer, callback?: () => void): unknown;
  _getHandler(name: string): CommandHandler | undefined;
  send(code: number, data?: string): void;
  close(): void;
}

type CommandHandler = (this: GuardedConnection, command: Buffer, callback: () => void) => unknown;

/** Reports the failure and closes the session with 421 4.3.0. */
function failSession(connection: GuardedConnection, error: unknown, where: string): void {
  const handler = failureHandlers.get(connection._server);
  if (handler) handler(error, connection.session, where);
  else console.error(`smtp session ${connection.session?.id ?? '?'} failed in ${where}: ${errorMessage(error)}`);
  try {
    connection.send(421, sessionFailureReply().message);
    connection.close();
  } catch {
    // the socket is already gone
  }
}

const marker = Symbol.for('outpost.smtp-session-guard');
const proto = SMTPConnection.prototype as unknown as GuardedConnection & { [marker]?: boolean };

if (!proto[marker]) {
  proto[marker] = true;
  // Commands are handled inside the socket's 'data' event: an exception there would otherwise
  // end the process. smtp-server answers an exception in a command handler with 451 and keeps
  // the session, unlogged; we close the session and report it instead.
  const originalOnCommand = proto._onCommand;
  proto._onCommand = function (this: GuardedConnection, command, callback) {
    try {
      return originalOnCommand.call(this, command, callback);
    } catch (error: unknown) {
      failSession(this, error, 'command');
      return undefined;
    }
  };
  const originalGetHandler = proto._getHandler;
  proto._getHandler = function (this: GuardedConnection, name) {
    const handler = originalGetHandler.call(this, name);
    if (typeof handler !== 'function') return handler;
    return function (this: GuardedConnection, command: Buffer, callback: () => void) {
      try {
        return handler.call(this, command, callback);
      } catch (error: unknown) {
        failSession(this, error, `command ${name}`);
        return undefined;
      }
    };
  };
}
