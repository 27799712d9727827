// The SMTP ingress: a thin shell around smtp-server's hooks. It identifies the sender (AUTH or
// source IP), runs the policy check lists at each phase, streams DATA durably to the blob store,
// queues the message for scanning, and only then answers `250 2.0.0 queued as ID`.
import { onMalformedRcpt, setGreetingDelay } from './smtp-server-patches.js';
import { isStorageFull } from '../core/storage-full.js';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { pooledRandomBytes } from '../core/random-pool.js';
import type { Readable } from 'node:stream';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { parseMailbox } from '../core/policy/address.js';
import type { Config } from '../core/config.js';
import type { Check, CheckResult } from '../core/checks/check.js';
import { runChecks, runChecksNow } from '../core/checks/check.js';
import type { ConnectFacts, DataFacts, MailFromFacts, RcptToFacts, Sender } from '../core/checks/session.js';
import { canonicalLogin, parseIdentity, type OutgoingUser, type Tenant } from '../core/identity.js';
import type { UserSettings } from '../core/settings.js';
import { VerifiedPasswords } from '../core/verified-passwords.js';
import { cachedIpUserLookup } from '../core/ip-user-lookup.js';
import { errorMessage } from '../core/log.js';
import { andThen, attempt, whenFailed, type Maybe } from '../core/maybe.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from '../core/ports.js';
import { effectiveUserSettings, type ConfigStore, type MessageLog, type MessageRecord } from '../core/stores.js';
import type { MessageStats } from '../core/api/stats.js';
import { startTimer, timedNow, type MetricRecorder } from '../core/metrics.js';
import { headerValues } from '../core/headers.js';
import { DataInspector } from './data-inspector.js';
import { closeSmtp, listenSmtp } from './listen.js';
import './record-deadline.js';
import { guardHooks, logListenerErrors, onSessionFailure } from './session-guard.js';
import { SessionCaps } from './session-caps.js';
import { keepSmallOrSpill, MemoryBudget } from './small-message.js';

/** The policy the ingress consults; core/policy provides it. Every member is optional. */
export interface IngressPolicy {
  connect?: ReadonlyArray<Check<ConnectFacts>>;
  mailFrom?: ReadonlyArray<Check<MailFromFacts>>;
  rcptTo?: ReadonlyArray<Check<RcptToFacts>>;
  /**
   * Run for a RCPT TO address smtp-server's parser refuses (`bob@@example.org`), so that it counts
   * towards the sender's invalid recipient limit; it reserves nothing and is never accepted.
   */
  malformedRcptTo?: ReadonlyArray<Check<RcptToFacts>>;
  data?: ReadonlyArray<Check<DataFacts>>;
  /** Commits counters for an accepted message. */
  afterAccept?(facts: DataFacts): Maybe<void>;
  /** Gives back what RCPT reserved when a transaction ends without an accepted message. */
  releaseTransaction?(facts: RcptToFacts | MailFromFacts, rcpts: string[]): Maybe<void>;
  /** A refusal (for reputation and lock-after-repeated-violations bookkeeping). */
  onRefusal?(facts: ConnectFacts & Partial<MailFromFacts>, result: CheckResult): Promise<void>;
  isAuthBlocked?(ip: string, username: string): Promise<CheckResult | undefined>;
  onAuthFailure?(ip: string, username: string): Promise<void>;
  onAuthSuccess?(ip: string, username: string): Promise<void>;
}

export interface IngressDeps {
  config: Config;
  configStore: ConfigStore;
  blobs: BlobStore;
  queue: Queue;
  log: MessageLog;
  logger: Logger;
  clock: Clock;
  tls: { key: Buffer; cert: Buffer };
  policy?: IngressPolicy;
  metrics?: MetricRecorder;
  /** Per-tenant and per-user statistics of refusals during the session. */
  stats?: Pick<MessageStats, 'recordRefusal'>;
  /**
   * Writes an accepted message's log record, its 'received' event and its queue entry as one
   * durable step (the single node commits many messages at once: ThreadedAcceptanceBatch). Without
   * it, the log and the queue are written one after another, the queue entry last.
   */
  recordAccepted?: (message: AcceptedMessage) => Promise<void>;
  /**
   * recordAccepted also stores `AcceptedMessage.content` in its commit (the single node's table of
   * message bodies): messages up to `queue.inlineBodyBytes` then skip the blob store's file write.
   */
  recordsContent?: boolean;
  /** Called after a message is queued (the single node wakes its scan poller). */
  onQueued?: (queue: string) => void;
  /**
   * The IP user of a client address when its store keeps it exactly (the single node's reads from
   * memory, dropped on every change); without it, `configStore.findIpUser` behind a short cache.
   */
  ipUserLookup?: (ip: string) => Maybe<OutgoingUser | undefined>;
}

/** What the ingress writes for a message it accepts, before it answers 250. */
export interface AcceptedMessage {
  record: Omit<MessageRecord, 'updatedAt'>;
  event: { name: 'received'; detail: Record<string, unknown> };
  queue: 'scan';
  body: string;
  /** The message itself, stored with the rest (recordsContent) instead of in the blob store, under the envelope's blobKey. */
  content?: { blobKey: string; bytes: Buffer };
}

export class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    readonly enhancedCode: string,
    text: string,
  ) {
    // smtp-server-patches keeps the enhanced code that leads the text.
    super(`${enhancedCode} ${text}`);
  }
}

interface SessionState {
  session?: SMTPServerSession;
  authFailures: number;
  sender?: Sender;
  /** Recipients accepted in the current transaction, for reservation release. */
  rcpts: string[];
  mailFacts?: MailFromFacts;
  /** Stops the clock of the transaction begun by MAIL FROM, at the answer to its DATA. */
  endTransaction?: (labels: { outcome: 'accepted' | 'refused' }) => void;
}

/** A unique, sortable, URL-safe queue id: time in base36 + 40 random bits. */
export function newQueueId(now: number): string {
  return now.toString(36).toUpperCase().padStart(9, '0') + pooledRandomBytes(5).toString('hex').toUpperCase();
}

function clientIp(session: SMTPServerSession): string {
  const address = session.remoteAddress;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

function fromResult(result: CheckResult): SmtpReply {
  const code = result.code ?? (result.action === 'tempfail' ? 451 : 550);
  const enhanced = result.enhancedCode ?? (code >= 500 ? '5.7.1' : '4.7.1');
  return new SmtpReply(code, enhanced, result.text ?? (code >= 500 ? 'Refused by policy' : 'Try again later'));
}

export class Ingress {
  private readonly sessions = new Map<string, SessionState>();
  private draining = false;
  readonly submission: SMTPServer;
  readonly submissions: SMTPServer;
  private readonly caps: Record<'submission' | 'submissions', SessionCaps>;
  /** The IP user of a client address, cached briefly: asked on every MAIL FROM without AUTH. */
  private readonly findIpUser: (ip: string) => Maybe<OutgoingUser | undefined>;
  /** Passwords verified right, remembered for smtp.authCacheSeconds. */
  private readonly passwords: VerifiedPasswords;
  /** Bytes of small messages held in memory until their commit, across sessions (queue.inlineBodyMemoryBytes). */
  readonly inMemory: MemoryBudget;
  /**
   * A user's effective settings, worked out again only when the user or its tenant is another
   * object: the single node's configuration reads hand back the same objects until something
   * changes, so each MAIL FROM need not merge and clamp the same three layers of settings again.
   */
  private readonly settingsOf = new WeakMap<OutgoingUser, { tenant: Tenant; settings: UserSettings }>();

  constructor(private readonly deps: IngressDeps) {
    this.findIpUser = deps.ipUserLookup ?? cachedIpUserLookup(deps.configStore);
    this.passwords = new VerifiedPasswords({ ttlMs: deps.config.smtp.authCacheSeconds * 1000, now: () => deps.clock.now() });
    this.inMemory = new MemoryBudget(deps.config.queue.inlineBodyMemoryBytes);
    const { smtp } = deps.config;
    const caps = { maxPerAddress: smtp.maxSessionsPerAddress, maxTotal: smtp.maxSessions, exemptions: smtp.sessionCapExemptions };
    this.caps = { submission: new SessionCaps(caps), submissions: new SessionCaps(caps) };
    this.submission = this.createServer('submission', false);
    this.submissions = this.createServer('submissions', true);
  }

  private createServer(listener: 'submission' | 'submissions', secure: boolean): SMTPServer {
    const { config } = this.deps;
    const server = new SMTPServer(guardHooks({
      secure,
      key: this.deps.tls.key,
      cert: this.deps.tls.cert,
      name: config.hostname,
      banner: 'Outpost ESMTP',
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: false,
      authOptional: true, // IP users send without AUTH; MAIL FROM decides who may relay
      size: config.smtp.maxMessageBytes,
      rejectOversized: true,
      // The caps in onConnect answer 421 4.7.0 and close; smtp-server's own limit (a 421 without
      // an enhanced code) is only a backstop above them, also for sockets still in the TLS handshake.
      maxClients: config.smtp.maxSessions + config.smtp.maxSessionsPerAddress,
      maxCommandLength: config.smtp.maxCommandLength,
      socketTimeout: config.smtp.socketTimeoutSeconds * 1000,
      closeTimeout: config.smtp.closeTimeoutSeconds * 1000,
      disableReverseLookup: true,
      hideDSN: true,
      hideENHANCEDSTATUSCODES: false,
      hideREQUIRETLS: true,
      logger: false,
      onConnect: (session, callback) => this.onConnect(listener, session, callback),
      onAuth: (auth, session, callback) => this.onAuth(auth, session, callback),
      onMailFrom: (address, session, callback) => this.onMailFrom(listener, address, session, callback),
      onRcptTo: (address, session, callback) => this.onRcptTo(address, session, callback),
      onData: (stream, session, callback) => this.onData(stream, session, callback),
      onClose: (session) => this.onClose(session),
    }, (error, session, where) => this.sessionFailed(listener, error, session, where)));
    logListenerErrors(server, { listener, logger: this.deps.logger, metrics: this.deps.metrics });
    onSessionFailure(server, (error, session, where) => this.sessionFailed(listener, error, session, where));
    onMalformedRcpt(server, (address, session, callback) => this.onMalformedRcpt(address, session, callback));
    setGreetingDelay(server, config.smtp.greetingDelayMs);
    return server;
  }

  private state(session: SMTPServerSession): SessionState {
    let state = this.sessions.get(session.id);
    if (!state) {
      state = { authFailures: 0, rcpts: [] };
      this.sessions.set(session.id, state);
    }
    return state;
  }

  private connectFacts(listener: ConnectFacts['listener'], session: SMTPServerSession): ConnectFacts {
    return { sessionId: session.id, clientIp: clientIp(session), listener, now: this.deps.clock.now() };
  }

  private refused(facts: ConnectFacts & Partial<MailFromFacts>, result: CheckResult, phase: string): SmtpReply {
    const reply = fromResult(result);
    this.deps.metrics?.inc('outpost_smtp_refusals_total', 'SMTP refusals by phase and reason (first symbol).', {
      phase,
      reason: result.symbols[0]?.name ?? 'UNSPECIFIED',
    });
    this.deps.logger.info('refused', {
      phase,
      session: facts.sessionId,
      clientIp: facts.clientIp,
      identity: facts.sender?.user.identity,
      mailFrom: facts.mailFrom,
      code: reply.responseCode,
      enhancedCode: reply.enhancedCode,
      symbols: result.symbols,
    });
    this.deps.policy?.onRefusal?.(facts, result).catch((error: unknown) => {
      this.deps.logger.error('refusal bookkeeping failed', { error: errorMessage(error) });
    });
    if (facts.sender) {
      const refusal = { tenantId: facts.sender.tenant.id, userId: facts.sender.user.id, reason: result.symbols[0]?.name ?? 'UNSPECIFIED', at: facts.now };
      this.deps.stats?.recordRefusal(refusal).catch((error: unknown) => {
        this.deps.logger.error('refusal statistics failed', { error: errorMessage(error) });
      });
    }
    return reply;
  }

  private onConnect(listener: ConnectFacts['listener'], session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const facts = this.connectFacts(listener, session);
    this.state(session).session = session;
    if (this.draining) return callback(new SmtpReply(421, '4.3.2', 'Service shutting down; please try again later'));
    const overCap = this.caps[listener === 'submissions' ? 'submissions' : 'submission'].admit(session.id, facts.clientIp);
    if (overCap) return callback(this.refused(facts, overCap, 'connect'));
    this.deps.metrics?.inc('outpost_smtp_sessions_total', 'SMTP sessions opened, by listener.', { listener });
    runChecks(this.deps.policy?.connect ?? [], facts)
      .then(({ final }) => {
        if (final.action === 'reject' || final.action === 'tempfail') return callback(this.refused(facts, final, 'connect'));
        callback();
      })
      .catch((error: unknown) => callback(this.internalError(error, 'connect')));
  }

  private onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: { user?: unknown }) => void,
  ): void {
    const state = this.state(session);
    const ip = clientIp(session);
    const username = canonicalLogin(auth.username ?? '');
    this.authenticate(username, auth.password ?? '', ip)
      .then(async (user) => {
        if (user) {
          state.authFailures = 0;
          await this.deps.policy?.onAuthSuccess?.(ip, username);
          this.deps.logger.info('authenticated', { session: session.id, clientIp: ip, identity: user.identity });
          return callback(null, { user: user.id });
        }
        state.authFailures += 1;
        await this.deps.policy?.onAuthFailure?.(ip, username);
        this.deps.logger.info('authentication failed', { session: session.id, clientIp: ip, username, failures: state.authFailures });
        if (state.authFailures >= this.deps.config.policy.authFailure.perConnection) {
          return callback(new SmtpReply(421, '4.7.0', 'Too many failed authentication attempts; closing connection'));
        }
        callback(new SmtpReply(535, '5.7.8', 'Authentication credentials invalid'));
      })
      .catch((error: unknown) => callback(error instanceof SmtpReply ? error : this.internalError(error, 'auth')));
  }

  /** The user for these credentials, or undefined; unknown users and wrong passwords answer alike. */
  private async authenticate(username: string, password: string, ip: string): Promise<OutgoingUser | undefined> {
    const blocked = await this.deps.policy?.isAuthBlocked?.(ip, username);
    let identity: string | undefined;
    try {
      const parsed = parseIdentity(username);
      if (parsed.kind !== 'ip') identity = parsed.identity;
    } catch {
      identity = undefined;
    }
    const user = identity ? await this.deps.configStore.findUserByLogin(identity) : undefined;
    // Always hash, so that timing does not reveal whether the user exists or is blocked. A blocked
    // login skips the remembered passwords: a fast answer would tell a guesser that it guessed right.
    const { ok, cached } = await this.passwords.verify(password, user?.passwordHash ?? null, { remembered: !blocked });
    this.deps.metrics?.inc('outpost_smtp_auth_password_checks_total', { how: cached ? 'remembered' : 'hashed' });
    if (blocked) {
      this.deps.logger.info('authentication blocked', { clientIp: ip, username, symbols: blocked.symbols });
      throw fromResult(blocked);
    }
    return ok ? user : undefined;
  }

  /** The session's sender: at once when the user and tenant are read from memory (core/maybe.ts). */
  private resolveSender(session: SMTPServerSession): Maybe<Sender | undefined> {
    const { configStore } = this.deps;
    if (typeof session.user === 'string') return andThen(configStore.getUser(session.user), (user) => this.senderOf(user, 'auth'));
    return andThen(this.findIpUser(clientIp(session)), (user) => this.senderOf(user, 'ip'));
  }

  private senderOf(user: OutgoingUser | undefined, via: Sender['via']): Maybe<Sender | undefined> {
    if (!user) return undefined;
    return andThen(this.deps.configStore.getTenant(user.tenantId), (tenant): Sender | undefined => {
      if (!tenant) return undefined;
      const known = this.settingsOf.get(user);
      if (known?.tenant === tenant) return { user, tenant, via, settings: known.settings };
      const settings = effectiveUserSettings(user.settings, tenant, this.deps.config.defaults);
      this.settingsOf.set(user, { tenant, settings });
      return { user, tenant, via, settings };
    });
  }

  /**
   * Answers smtp-server's `callback` with what `work` comes to: a refusal it throws (SmtpReply), an
   * internal error as 451/452, else the hook's success. At once when `work` answers at once, as it
   * does when everything it reads is in memory: no promise and no later turn for the command.
   */
  private answer(callback: (err?: Error | null) => void, phase: string, work: () => Maybe<void>): void {
    const failed = (error: unknown) => callback(error instanceof SmtpReply ? error : this.internalError(error, phase));
    let outcome: Maybe<void>;
    try {
      outcome = work();
    } catch (error: unknown) {
      return failed(error);
    }
    if (outcome instanceof Promise) outcome.then(() => callback(), failed);
    else callback();
  }

  private onMailFrom(
    listener: ConnectFacts['listener'],
    address: SMTPServerAddress,
    session: SMTPServerSession,
    callback: (err?: Error | null) => void,
  ): void {
    const state = this.state(session);
    this.releaseRcpts(state);
    state.endTransaction = startTimer(this.deps.metrics, 'outpost_smtp_transaction_duration_seconds');
    this.answer(callback, 'mail', () => andThen(this.resolveSender(session), (sender) => this.admitMailFrom(listener, address, session, state, sender)));
  }

  private admitMailFrom(listener: ConnectFacts['listener'], address: SMTPServerAddress, session: SMTPServerSession, state: SessionState, sender: Sender | undefined): Maybe<void> {
    if (!sender) {
      const facts = this.connectFacts(listener, session);
      throw this.refused(facts, { action: 'reject', code: 530, enhancedCode: '5.7.0', text: 'Authentication required: log in with AUTH after STARTTLS, or send from an authorised IP address', symbols: [{ name: 'NOT_AUTHORISED_TO_RELAY', evidence: { clientIp: facts.clientIp } }] }, 'mail');
    }
    const sizeParam = address.args && typeof address.args === 'object' ? (address.args as Record<string, unknown>).SIZE : undefined;
    const facts: MailFromFacts = {
      ...this.connectFacts(listener, session),
      helo: session.hostNameAppearsAs ?? '',
      secure: session.secure,
      sender,
      mailFrom: address.address ?? '',
      declaredSize: typeof sizeParam === 'string' && /^\d+$/.test(sizeParam) ? Number(sizeParam) : undefined,
    };
    if (sender.tenant.suspended) {
      throw this.refused(facts, { action: 'reject', code: 550, enhancedCode: '5.7.1', text: 'This account is suspended; contact your provider', symbols: [{ name: 'TENANT_SUSPENDED', evidence: { tenant: sender.tenant.name } }] }, 'mail');
    }
    const limit = Math.min(sender.settings.maxMessageBytes, this.deps.config.smtp.maxMessageBytes);
    if (facts.declaredSize !== undefined && facts.declaredSize > limit) {
      throw this.refused(facts, { action: 'reject', code: 552, enhancedCode: '5.3.4', text: `Message size ${facts.declaredSize} exceeds the limit of ${limit} bytes for this account`, symbols: [{ name: 'MESSAGE_TOO_BIG', evidence: { declared: facts.declaredSize, limit } }] }, 'mail');
    }
    const checked = timedNow(this.deps.metrics, 'outpost_admission_duration_seconds', { phase: 'mail' }, () => runChecksNow(this.deps.policy?.mailFrom ?? [], facts));
    return andThen(checked, ({ final }) => {
      if (final.action === 'reject' || final.action === 'tempfail') throw this.refused(facts, final, 'mail');
      state.sender = sender;
      state.mailFacts = facts;
    });
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.state(session);
    this.answer(callback, 'rcpt', () => this.admitRcptTo(address, session, state));
  }

  private admitRcptTo(address: SMTPServerAddress, session: SMTPServerSession, state: SessionState): Maybe<void> {
    const mailFacts = state.mailFacts;
    if (!mailFacts) throw new SmtpReply(503, '5.5.1', 'Send MAIL FROM first');
    // smtp-server keeps one envelope entry per address (compared case-insensitively): a repeated
    // RCPT is accepted again, but counted and delivered once.
    const given = unquotedRecipient(address.address);
    if (given === undefined) {
      const facts: RcptToFacts = { ...mailFacts, now: this.deps.clock.now(), rcptTo: address.address, acceptedRcpts: [...state.rcpts] };
      throw this.refused(facts, { action: 'reject', code: 553, enhancedCode: '5.1.3', text: `Recipient address <${address.address}> has a quoted local part that is not relayed; use the address without quotes`, symbols: [{ name: 'RCPT_SYNTAX', evidence: { rcpt: address.address } }] }, 'rcpt');
    }
    const rcpt = withAsciiDomain(given);
    if (state.rcpts.some((accepted) => accepted.toLowerCase() === rcpt.toLowerCase())) return;
    const facts: RcptToFacts = { ...mailFacts, now: this.deps.clock.now(), rcptTo: given, acceptedRcpts: [...state.rcpts] };
    if (state.rcpts.length >= this.deps.config.smtp.maxRecipients) {
      throw this.refused(facts, { action: 'tempfail', code: 452, enhancedCode: '4.5.3', text: `Too many recipients: at most ${this.deps.config.smtp.maxRecipients} per message; send the rest in another message`, symbols: [{ name: 'TOO_MANY_RECIPIENTS', evidence: { limit: this.deps.config.smtp.maxRecipients } }] }, 'rcpt');
    }
    // The policy first: it counts a syntactically invalid recipient towards the identity's
    // invalid recipient limit; this plausibility check only keeps garbage out of the queue.
    const checked = timedNow(this.deps.metrics, 'outpost_admission_duration_seconds', { phase: 'rcpt' }, () => runChecksNow(this.deps.policy?.rcptTo ?? [], facts));
    return andThen(checked, ({ final }) => {
      if (final.action === 'reject' || final.action === 'tempfail') throw this.refused(facts, final, 'rcpt');
      if (!isPlausibleAddress(given)) {
        throw this.refused(facts, { action: 'reject', code: 553, enhancedCode: '5.1.3', text: `Recipient address <${address.address}> is not a valid address`, symbols: [{ name: 'RCPT_SYNTAX', evidence: { rcpt: address.address } }] }, 'rcpt');
      }
      state.rcpts.push(rcpt);
      // The client left while the checks ran: onClose has released what it saw, not this reservation.
      if (this.sessions.get(session.id) !== state) this.releaseRcpts(state);
    });
  }

  /** A RCPT TO address smtp-server refused to parse: the policy counts it and answers; else smtp-server's 501. */
  private onMalformedRcpt(address: string, session: SMTPServerSession, callback: (err?: Error) => void): void {
    const mailFacts = this.state(session).mailFacts;
    const checks = this.deps.policy?.malformedRcptTo ?? [];
    if (!mailFacts || checks.length === 0) return callback();
    const facts: RcptToFacts = { ...mailFacts, now: this.deps.clock.now(), rcptTo: address, acceptedRcpts: [...this.state(session).rcpts] };
    runChecks(checks, facts)
      .then(({ final }) => callback(final.action === 'reject' || final.action === 'tempfail' ? this.refused(facts, final, 'rcpt') : undefined))
      .catch((error: unknown) => callback(this.internalError(error, 'rcpt')));
  }

  private onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (err?: Error | null, message?: string) => void,
  ): void {
    const state = this.state(session);
    const { config, clock } = this.deps;
    const mailFacts = state.mailFacts;
    const sender = state.sender;
    if (!mailFacts || !sender) {
      stream.resume();
      return callback(new SmtpReply(503, '5.5.1', 'Send MAIL FROM first'));
    }
    // The transaction's recipients (and their reservations) belong to this message from now on: a
    // client that hangs up after the end of data must not release them while the message is
    // committed (it would then be queued and delivered without being counted). They are released
    // here if the message is refused or fails, and settled by afterAccept if it is queued.
    const rcpts = state.rcpts;
    state.rcpts = [];
    const endTransaction = state.endTransaction;
    state.endTransaction = undefined;
    const now = clock.now();
    const id = newQueueId(now);
    const blobKey = `messages/${new Date(now).toISOString().slice(0, 10)}/${id}.eml`;
    const limit = Math.min(sender.settings.maxMessageBytes, config.smtp.maxMessageBytes);
    const trace = Buffer.from(receivedHeader(mailFacts, config.hostname, id, now));
    const received = trace.length;
    const inspector = new DataInspector(limit + received, config.smtp.maxLineLength);
    const inlineLimit = this.deps.recordsContent && this.deps.recordAccepted ? config.queue.inlineBodyBytes : 0;
    // A message that may be kept in memory is read from smtp-server's stream chunk by chunk
    // (keepSmallOrSpill, each chunk through inspector.inspectChunk); otherwise it streams through the
    // inspector to the blob store.
    if (inlineLimit === 0) {
      inspector.write(trace);
      stream.pipe(inspector);
    }
    let logged = false;
    let committed = false;
    // A client that resets the connection in DATA: smtp-server destroys the stream without 'end'.
    // The blob write must then fail and be cleaned up, not wait for more data forever.
    let clientGone = false;
    stream.once('error', () => undefined);
    // The blob store's pipeline reports the inspector's errors; this listener only keeps an error
    // after the pipeline is done (a refused message, then a reset) from reaching the process.
    inspector.on('error', () => undefined);
    stream.once('close', () => {
      if (stream.readableEnded) return;
      clientGone = true;
      if (!inspector.destroyed) inspector.destroy(new Error('the client closed the connection during DATA'));
    });

    // The bytes this message holds of the memory budget, given back once it is committed or refused.
    let heldInMemory = 0;
    (async () => {
      // A small message stays in memory until the commit that queues it; the rest is written now.
      let content: Buffer | undefined;
      if (inlineLimit > 0) {
        const spill = (whole: Readable) => this.deps.blobs.putStream(blobKey, whole);
        content = await keepSmallOrSpill(stream, inlineLimit, spill, this.inMemory, { first: trace, take: (chunk) => inspector.inspectChunk(chunk) });
        inspector.inspectEnd();
      } else {
        await this.deps.blobs.putStream(blobKey, inspector);
      }
      heldInMemory = content?.length ?? 0;
      const size = inspector.bytes - received;
      const headers = inspector.headerBlock();
      const facts: DataFacts = { ...mailFacts, now: clock.now(), rcptTo: rcpts, size, headerFrom: headerValues(headers, 'from') };
      const refuse = async (result: CheckResult): Promise<never> => {
        if (!content) await this.deps.blobs.delete(blobKey);
        throw this.refused(facts, result, 'data');
      };
      if (stream.sizeExceeded || inspector.defect === 'too-big') {
        await refuse({ action: 'reject', code: 552, enhancedCode: '5.3.4', text: `Message exceeds the limit of ${limit} bytes for this account`, symbols: [{ name: 'MESSAGE_TOO_BIG', evidence: { limit } }] });
      }
      if (inspector.defect === 'bare-line-ending') {
        await refuse({ action: 'reject', code: 550, enhancedCode: '5.6.0', text: 'Message contains a bare CR or LF; lines must end with CRLF', symbols: [{ name: 'BARE_LINE_ENDING', evidence: { offset: (inspector.defectAt ?? 0) - received } }] });
      }
      if (inspector.defect === 'nul-byte') {
        await refuse({ action: 'reject', code: 550, enhancedCode: '5.6.0', text: 'Message contains a NUL character, which SMTP does not allow', symbols: [{ name: 'NUL_IN_DATA', evidence: { offset: (inspector.defectAt ?? 0) - received } }] });
      }
      if (inspector.defect === 'line-too-long' || inspector.defect === 'header-too-big') {
        await refuse({ action: 'reject', code: 550, enhancedCode: '5.6.0', text: inspector.defect === 'line-too-long' ? `Message has a line longer than ${config.smtp.maxLineLength} octets` : 'Message header is too large', symbols: [{ name: inspector.defect === 'line-too-long' ? 'LINE_TOO_LONG' : 'HEADER_TOO_BIG', evidence: { limit: config.smtp.maxLineLength } }] });
      }
      const checked = runChecksNow(this.deps.policy?.data ?? [], facts);
      const { final } = checked instanceof Promise ? await checked : checked;
      if (final.action === 'reject' || final.action === 'tempfail') await refuse(final);

      const envelope: Envelope = {
        messageId: id,
        tenantId: sender.tenant.id,
        userId: sender.user.id,
        identity: sender.user.identity,
        mailFrom: mailFacts.mailFrom,
        rcptTo: rcpts,
        blobKey,
        size,
        receivedAt: now,
        clientIp: mailFacts.clientIp,
        helo: mailFacts.helo,
      };
      const subject = headerValues(headers, 'subject')[0]?.slice(0, 300) ?? null;
      const accepted: AcceptedMessage = {
        record: { id, tenantId: sender.tenant.id, userId: sender.user.id, identity: sender.user.identity, mailFrom: envelope.mailFrom, rcptTo: rcpts, size, subject, status: 'queued', receivedAt: now },
        event: { name: 'received', detail: { clientIp: mailFacts.clientIp, via: sender.via, size, rcptCount: rcpts.length, tls: mailFacts.secure } },
        queue: 'scan',
        body: JSON.stringify(envelope),
        content: content ? { blobKey, bytes: content } : undefined,
      };
      if (this.deps.recordAccepted) {
        // One transaction: either all of it is written, or nothing (then nothing needs discarding).
        await this.deps.recordAccepted(accepted);
      } else {
        await this.deps.log.create(accepted.record);
        logged = true;
        await this.deps.log.addEvent(id, accepted.event.name, accepted.event.detail);
        // The queue entry is the commit point: after it, the message will be delivered or bounced.
        await this.deps.queue.send(accepted.queue, accepted.body);
      }
      committed = true;
      // Bookkeeping after the commit must not change the answer: a 451 now would make the client
      // send the queued message again. Unsettled reservations keep counting until their window ends.
      // Nor does the answer wait for it: the counters take calls in order, so the session's next
      // reservation comes after this settle.
      const afterAccept = this.deps.policy?.afterAccept;
      if (afterAccept) {
        whenFailed(attempt(() => afterAccept(facts)), (error) => {
          this.deps.logger.error('settling reservations of an accepted message failed', { id, error: errorMessage(error) });
        });
      }
      this.deps.metrics?.inc('outpost_messages_accepted_total', 'Messages accepted (250) and queued.', { via: sender.via });
      this.deps.metrics?.inc('outpost_recipients_accepted_total', 'Recipients of accepted messages.', {}, rcpts.length);
      this.deps.logger.info('queued', { id, identity: sender.user.identity, clientIp: mailFacts.clientIp, rcptCount: rcpts.length, size });
      this.deps.onQueued?.('scan');
      return id;
    })()
      .then((queued) => {
        this.inMemory.give(heldInMemory);
        endTransaction?.({ outcome: 'accepted' });
        callback(null, `2.0.0 Ok: queued as ${queued}`);
      })
      .catch((error: unknown) => {
        this.inMemory.give(heldInMemory);
        endTransaction?.({ outcome: 'refused' });
        stream.unpipe(inspector);
        stream.resume();
        if (!committed) this.releaseReservations(mailFacts, rcpts);
        if (!committed && !(error instanceof SmtpReply)) this.discardUncommitted(id, blobKey, logged, error);
        if (clientGone && !committed) {
          this.deps.logger.info('client left during DATA; nothing was queued', { session: session.id, clientIp: mailFacts.clientIp });
          return callback(new SmtpReply(421, '4.4.2', 'Connection lost during DATA'));
        }
        callback(error instanceof SmtpReply ? error : this.internalError(error, 'data'));
      });
  }

  /** A message that failed before its queue entry: the client is told to retry, so keep neither its blob nor a "queued" log record. */
  private discardUncommitted(id: string, blobKey: string, logged: boolean, cause: unknown): void {
    const cleanup = async () => {
      await this.deps.blobs.delete(blobKey);
      if (logged) await this.deps.log.addEvent(id, 'refused', { reason: 'temporary local problem before queueing', error: errorMessage(cause) }, 'refused');
    };
    cleanup().catch((error: unknown) => this.deps.logger.error('discarding an unqueued message failed', { id, error: errorMessage(error) }));
  }

  private releaseRcpts(state: SessionState): void {
    const rcpts = state.rcpts;
    state.rcpts = [];
    if (state.mailFacts) this.releaseReservations(state.mailFacts, rcpts);
  }

  private releaseReservations(mailFacts: MailFromFacts, rcpts: string[]): void {
    if (rcpts.length === 0) return;
    const release = this.deps.policy?.releaseTransaction;
    if (!release) return;
    whenFailed(attempt(() => release(mailFacts, rcpts)), (error) => {
      this.deps.logger.error('releasing reservations failed', { error: errorMessage(error) });
    });
  }

  /** Sessions open now. */
  get activeSessions(): number {
    return this.sessions.size;
  }

  private onClose(session: SMTPServerSession): void {
    this.caps.submission.release(session.id);
    this.caps.submissions.release(session.id);
    const state = this.sessions.get(session.id);
    if (state) this.releaseRcpts(state);
    this.sessions.delete(session.id);
  }

  /** An exception escaped a session: the guard closes that session with 421; the others go on. */
  private sessionFailed(listener: string, error: unknown, session: SMTPServerSession | undefined, where: string): void {
    this.deps.metrics?.inc('outpost_smtp_session_failures_total', 'SMTP sessions closed because of an unexpected exception, by listener.', { listener });
    this.deps.logger.error('session failed; closing it', {
      listener,
      session: session?.id,
      clientIp: session ? clientIp(session) : undefined,
      where,
      error: errorMessage(error),
      stack: error instanceof Error ? error.stack : undefined,
    });
  }

  private internalError(error: unknown, phase: string): SmtpReply {
    this.deps.logger.error('internal error', { phase, error: errorMessage(error), code: errorCode(error) });
    // A full disk (message file or database) is "mail system full" (RFC 3463 X.3.1): the client keeps the message and retries.
    if (isStorageFull(error)) return new SmtpReply(452, '4.3.1', 'Insufficient system storage; please try again later');
    return new SmtpReply(451, '4.3.0', 'Temporary local problem; please try again later');
  }

  async listen(host: string, ports: { submission: number; submissions: number }): Promise<{ submission: number; submissions: number }> {
    return {
      submission: await listenSmtp(this.submission, host, ports.submission),
      submissions: await listenSmtp(this.submissions, host, ports.submissions),
    };
  }

  /**
   * Graceful stop: new connections are greeted with 421; transactions in flight (MAIL given, or
   * DATA streaming) get up to closeTimeoutSeconds to finish; then every remaining session gets 421
   * and the listeners close.
   */
  async close(): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + this.deps.config.smtp.closeTimeoutSeconds * 1000;
    const inTransaction = () => [...this.sessions.values()].some((state) => state.session?.envelope.mailFrom);
    while (inTransaction() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const server of [this.submission, this.submissions]) {
      for (const connection of server.connections) {
        connection.send(421, '4.3.2 Service shutting down; please try again later');
        connection.close();
      }
    }
    await Promise.all([closeSmtp(this.submission), closeSmtp(this.submissions)]);
  }
}

/**
 * Syntax check that keeps garbage out of the queue (the policy does the thorough checks, with the
 * same parser): a mailbox, or an address literal. smtp-server hands over IDN domains in Unicode.
 */
export function isPlausibleAddress(address: string): boolean {
  if (address.length > 254) return false;
  const literal = /^[^@]+@\[(?:ipv6:)?([^\]]+)\]$/i.exec(address);
  if (literal?.[1]) return isIP(literal[1]) !== 0;
  return parseMailbox(address) !== undefined;
}

const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/**
 * The recipient with a needlessly quoted local part unquoted (`"user"@example.org` is
 * `user@example.org`, RFC 5321 §4.1.2), so that the queue holds the form the next hop echoes and
 * delivery matches its answers; undefined for a local part that needs its quotes (spaces, @, a
 * backslash): such mailboxes are not relayed.
 */
function unquotedRecipient(address: string): string | undefined {
  const quoted = /^"((?:[^"\\]|\\.)*)"(@[^@]+)$/.exec(address);
  if (!quoted) return address;
  const local = (quoted[1] ?? '').replace(/\\(.)/g, '$1');
  return DOT_ATOM.test(local) ? local + (quoted[2] ?? '') : undefined;
}

/**
 * smtp-server turns an IDN domain given in ASCII (xn--) into Unicode; the queue keeps the ASCII
 * form, which DNS lookups and SMTP peers without SMTPUTF8 understand.
 */
function withAsciiDomain(address: string): string {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1);
  if (at < 0 || /^[\x00-\x7f]*$/.test(domain)) return address;
  return address.slice(0, at + 1) + (domainToASCII(domain) || domain);
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function receivedHeader(facts: MailFromFacts, hostname: string, id: string, now: number): string {
  const protocol = facts.sender.via === 'auth' ? (facts.secure ? 'ESMTPSA' : 'ESMTPA') : facts.secure ? 'ESMTPS' : 'ESMTP';
  const helo = facts.helo.replace(/[^\x21-\x7e]/g, '') || 'unknown';
  return `Received: from ${helo} ([${facts.clientIp}])\r\n\tby ${hostname} (Outpost) with ${protocol} id ${id};\r\n\t${new Date(now).toUTCString().replace('GMT', '+0000')}\r\n`;
}
