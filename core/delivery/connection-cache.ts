// Outbound SMTP sessions kept open between messages, as Postfix's connection cache
// (smtp_connection_cache_on_demand) and ZoneMTA's pooled senders do: a message for a destination
// that was just delivered to reuses the idle session instead of paying TCP, greeting, EHLO and
// STARTTLS again. Sessions are keyed by everything that makes one session unfit for another
// message: the destination (recipient domain or smarthost), the host name (SNI, certificate
// check), address and port, and the TLS level (verified, opportunistic, plaintext after a broken
// STARTTLS), and the login a smarthost session was authenticated with.
//
// Bounds: an idle session is closed after `idleMs`; a session carries at most `maxMessages`
// messages; a destination never has more than `perDestination` sessions open, idle ones
// included (the scheduler's slots bound the busy ones; an idle one is closed before a new one
// opens beyond the bound).
import { Readable } from 'node:stream';
import { Socket } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type { Logger } from '../ports.js';
import { errorMessage } from '../log.js';

export interface ConnectionCacheLimits {
  /** How long a session may stay idle before it is closed (delivery.connectionIdleSeconds); 0 turns reuse off. */
  idleMs: number;
  /** Messages sent over one session before it is closed (delivery.messagesPerConnection). */
  maxMessages: number;
  /** Sessions open to one destination, idle ones included (delivery.destinationConcurrency). */
  perDestination: number;
}

/** What identifies a session fit for reuse. */
export interface SessionKey {
  destination: string;
  /** Host name, address, port and TLS level, joined: sessions with equal keys are interchangeable. */
  route: string;
}

/** The login of a smarthost that asks for AUTH. */
export interface SmtpLogin {
  user: string;
  pass: string;
}

/** The parts of SMTPConnection's answer to a message that delivery reads. */
export type SentInfo = SMTPConnection.SentMessageInfo;

/** One outbound SMTP session, with promises instead of nodemailer's callbacks and events. */
class OutboundSession {
  readonly connection: SMTPConnection;
  messages = 0;
  /** Set once the session can carry no more messages (error, close by either side). */
  gone = false;
  /** The pending operation's failure path: a dropped session fails it instead of leaving it hanging. */
  private fail: ((error: unknown) => void) | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** When it last went idle: the longest idle is closed first. */
  idleSince = 0;

  constructor(
    readonly key: SessionKey,
    options: SMTPConnection.Options,
    private readonly onGone: (session: OutboundSession) => void,
  ) {
    this.connection = new SMTPConnection(options);
    // nodemailer reports a dropped session as an 'error' event (the pending callback never
    // runs), and an idle session can be dropped at any time: this listener is always there.
    this.connection.on('error', (error: unknown) => this.lost(error));
    this.connection.on('end', () => {
      // 'error' comes first when there is one; an 'end' alone while busy is a silent close.
      const upgrading = Reflect.get(this.connection, 'upgrading') === true;
      this.lost(Object.assign(new Error('Unexpected socket close'), { code: upgrading ? 'ETLS' : 'ECONNECTION', command: 'CONN' }));
    });
  }

  private lost(error: unknown): void {
    const fail = this.fail;
    this.fail = undefined;
    if (!this.gone) {
      this.gone = true;
      this.onGone(this);
    }
    fail?.(error);
  }

  /** Connects, greets, EHLO, STARTTLS as the options say, then logs in when `auth` is given. */
  async connect(auth?: SmtpLogin): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.fail = reject;
      this.connection.connect((error?: unknown) => {
        this.fail = undefined;
        if (error) reject(error);
        else resolve();
      });
    });
    this.sendAtOnce();
    if (!auth) return;
    await new Promise<void>((resolve, reject) => {
      this.fail = reject;
      this.connection.login({ user: auth.user, pass: auth.pass }, (error?: unknown) => {
        this.fail = undefined;
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /**
   * Sends one message. `dataStarted` tells, on failure, whether the message text had begun to
   * go out (after DATA's 354): from then on the receiver may hold the message, and sending it
   * again could deliver it twice.
   */
  send(mailFrom: string, recipients: string[], raw: Buffer): { done: Promise<SentInfo>; dataStarted: () => boolean } {
    let started = false;
    // nodemailer reads the message only once the envelope is accepted and DATA answered 354.
    const text = new Readable({
      read() {
        started = true;
        this.push(raw);
        this.push(null);
      },
    });
    const done = new Promise<SentInfo>((resolve, reject) => {
      if (this.gone) {
        reject(Object.assign(new Error('session closed while idle'), { code: 'ECONNECTION', command: 'CONN' }));
        return;
      }
      this.fail = reject;
      this.connection.send({ from: mailFrom, to: recipients }, text, (error, info) => {
        this.fail = undefined;
        this.messages += 1;
        if (error) reject(error);
        else resolve(info);
      });
    });
    return { done, dataStarted: () => started };
  }

  /**
   * Turns Nagle's algorithm off on the session's socket (nodemailer leaves it on). The message's
   * last segment (the end-of-data dot) otherwise waits for the acknowledgement of the one before,
   * which the receiver delays by up to 40 ms: every message over the session waited that long,
   * and ten sessions to a smarthost carried at most 160 messages a second.
   */
  private sendAtOnce(): void {
    const socket: unknown = Reflect.get(this.connection, '_socket');
    if (socket instanceof Socket) socket.setNoDelay(true);
  }

  /** Ends the session politely (QUIT) when it is still open, else at once. */
  close(polite: boolean): void {
    clearTimeout(this.idleTimer);
    this.fail = undefined;
    const wasGone = this.gone;
    this.gone = true;
    if (!wasGone) this.onGone(this);
    try {
      if (polite && !wasGone) this.connection.quit();
      else this.connection.close();
    } catch {
      // A socket that is already gone has nothing to close.
    }
  }
}

/** Error codes of a session that went away under us, as opposed to an answer from the receiver. */
const DROPPED = new Set(['ECONNECTION', 'ESOCKET', 'EPROTOCOL']);

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? Reflect.get(error, name) : undefined;
}

/**
 * A reused session that failed before the message text went out: the receiver closed it while
 * it sat idle (an idle timeout, a restart), which says nothing about the message. A 421 is the
 * receiver's way of saying so (RFC 5321 4.2.2 "closing transmission channel").
 */
function droppedBeforeData(error: unknown): boolean {
  const code = field(error, 'code');
  const responseCode = field(error, 'responseCode');
  if (responseCode === 421) return true;
  return responseCode === undefined && typeof code === 'string' && DROPPED.has(code);
}

export class ConnectionCache {
  private readonly idle = new Map<string, OutboundSession[]>();
  /** Sessions open per destination, idle and busy. */
  private readonly open = new Map<string, Set<OutboundSession>>();
  private opened = 0;
  private reused = 0;

  constructor(
    private readonly limits: ConnectionCacheLimits,
    private readonly logger?: Logger,
  ) {}

  /** Sessions opened and messages sent over a reused one since start (for tests and benchmarks). */
  stats(): { opened: number; reused: number; open: number; idle: number } {
    let open = 0;
    for (const sessions of this.open.values()) open += sessions.size;
    let idle = 0;
    for (const sessions of this.idle.values()) idle += sessions.length;
    return { opened: this.opened, reused: this.reused, open, idle };
  }

  /** Sessions open to `destination` now, idle ones included. */
  openTo(destination: string): number {
    return this.open.get(destination)?.size ?? 0;
  }

  /**
   * Sends one message over a cached session for `key` or a new one. A cached session that turns
   * out to be dead before the message text went out is closed and the message sent once more
   * over a new session; any other failure is thrown as nodemailer reported it.
   */
  async send(key: SessionKey, options: SMTPConnection.Options, mailFrom: string, recipients: string[], raw: Buffer, auth?: SmtpLogin): Promise<SentInfo> {
    const cached = this.take(key);
    if (cached) {
      this.reused += 1;
      const sending = cached.send(mailFrom, recipients, raw);
      try {
        const info = await sending.done;
        this.release(cached);
        return info;
      } catch (error: unknown) {
        cached.close(false);
        if (sending.dataStarted() || !droppedBeforeData(error)) throw error;
        this.logger?.info('cached connection was gone; sending over a new one', { destination: key.destination, error: errorMessage(error) });
      }
    }
    const session = await this.connect(key, options, auth);
    try {
      const info = await session.send(mailFrom, recipients, raw).done;
      this.release(session);
      return info;
    } catch (error: unknown) {
      session.close(false);
      throw error;
    }
  }

  /** Closes every session (at shutdown). */
  close(): void {
    for (const sessions of [...this.open.values()]) for (const session of [...sessions]) session.close(true);
    this.idle.clear();
    this.open.clear();
  }

  private take(key: SessionKey): OutboundSession | undefined {
    const sessions = this.idle.get(key.route + '\n' + key.destination);
    for (let session = sessions?.pop(); session; session = sessions?.pop()) {
      clearTimeout(session.idleTimer);
      if (!session.gone) return session;
    }
    return undefined;
  }

  private async connect(key: SessionKey, options: SMTPConnection.Options, auth?: SmtpLogin): Promise<OutboundSession> {
    this.makeRoom(key.destination);
    const session = new OutboundSession(key, options, (gone) => this.forget(gone));
    const open = this.open.get(key.destination) ?? new Set<OutboundSession>();
    this.open.set(key.destination, open);
    open.add(session);
    this.opened += 1;
    try {
      await session.connect(auth);
      return session;
    } catch (error: unknown) {
      session.close(false);
      throw error;
    }
  }

  /** Closes the destination's longest idle session when a new one would exceed perDestination. */
  private makeRoom(destination: string): void {
    const open = this.open.get(destination);
    if (!open || open.size < this.limits.perDestination) return;
    let oldest: OutboundSession | undefined;
    for (const [id, sessions] of this.idle) {
      if (!id.endsWith('\n' + destination)) continue;
      const candidate = sessions[0];
      if (candidate && (!oldest || candidate.idleSince < oldest.idleSince)) oldest = candidate;
    }
    oldest?.close(true);
  }

  /** After a message went out: back to the idle list, or closed when used up or reuse is off. */
  private release(session: OutboundSession): void {
    if (session.gone) return;
    if (this.limits.idleMs <= 0 || session.messages >= this.limits.maxMessages) {
      session.close(true);
      return;
    }
    const id = session.key.route + '\n' + session.key.destination;
    const sessions = this.idle.get(id) ?? [];
    this.idle.set(id, sessions);
    session.idleSince = Date.now();
    sessions.push(session);
    // The open socket keeps the process alive until then: a process that is done exits at most idleMs later.
    session.idleTimer = setTimeout(() => session.close(true), this.limits.idleMs);
  }

  private forget(session: OutboundSession): void {
    clearTimeout(session.idleTimer);
    const id = session.key.route + '\n' + session.key.destination;
    const sessions = this.idle.get(id);
    if (sessions) {
      const rest = sessions.filter((item) => item !== session);
      if (rest.length > 0) this.idle.set(id, rest);
      else this.idle.delete(id);
    }
    const open = this.open.get(session.key.destination);
    open?.delete(session);
    if (open?.size === 0) this.open.delete(session.key.destination);
  }
}
