// The bounce listener (port 2525 on the single node, 25 on AWS): receives delivery status
// notifications for mail Outpost sent. Admission (null sender, one recipient, a valid BATV tag on
// an address of a served domain) is decided at RCPT, so callouts get the same answer as bounces.
// Accepted bounces are stored and queued on 'bounce' for the bounce handler.
// The listener faces the internet unauthenticated, so it also bounds what one outsider can do:
// RCPTs per source IP and bounces per return path per hour (450 4.7.1 beyond), and a connection
// is closed (421 4.7.0) after a few refused RCPTs, so that BATV tags cannot be guessed in bulk.
import { isIP } from 'node:net';
import { setGreetingDelay } from './smtp-server-patches.js';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { batvStrip, type BatvKeyStore } from '../core/batv.js';
import { decideBounceData, decideBounceRcpt, type BounceTenant } from '../core/bounce/admission.js';
import { BOUNCE_BLOB_PREFIX } from '../core/bounce/housekeeping.js';
import type { CheckResult } from '../core/checks/check.js';
import type { Config } from '../core/config.js';
import type { CounterStore } from '../core/counters.js';
import { errorMessage } from '../core/log.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from '../core/ports.js';
import { DataInspector, type DataDefect } from './data-inspector.js';
import { closeSmtp, listenSmtp } from './listen.js';
import { newQueueId, SmtpReply } from './ingress.js';
import './record-deadline.js';
import { guardHooks, logListenerErrors, onSessionFailure } from './session-guard.js';
import { SessionCaps } from './session-caps.js';

/** Bounces carry at most the returned headers and some text; a large one is not a bounce. */
const MAX_BOUNCE_BYTES = 10 * 1024 * 1024;
/** Bounces quote what remote servers saw, long lines included: refusing them would lose the DSN. */
const MAX_BOUNCE_LINE = 65_536;
const HOUR_MS = 3_600_000;

export const BOUNCE_LISTENER_SYMBOLS = {
  clientRate: 'BOUNCE_CLIENT_RATE',
  returnPathRate: 'BOUNCE_RETURN_PATH_RATE',
  tooManyRefusals: 'BOUNCE_TOO_MANY_REFUSED_RCPTS',
} as const;

/** The answer to a DATA stream the inspector found unfit: too big, bare line endings, NUL, long lines. */
function defectRefusal(defect: DataDefect, at: number | undefined): CheckResult {
  const evidence = { offset: at ?? 0 };
  switch (defect) {
    case 'too-big':
      return { action: 'reject', code: 552, enhancedCode: '5.3.4', text: `Bounce too large (limit ${MAX_BOUNCE_BYTES} bytes)`, symbols: [{ name: 'MESSAGE_TOO_BIG', evidence: { limit: MAX_BOUNCE_BYTES } }] };
    case 'nul-byte':
      return { action: 'reject', code: 550, enhancedCode: '5.6.0', text: 'Message contains a NUL character, which SMTP does not allow', symbols: [{ name: 'NUL_IN_DATA', evidence }] };
    case 'bare-line-ending':
      return { action: 'reject', code: 550, enhancedCode: '5.6.0', text: 'Message contains a bare CR or LF; lines must end with CRLF', symbols: [{ name: 'BARE_LINE_ENDING', evidence }] };
    case 'line-too-long':
    case 'header-too-big':
      return { action: 'reject', code: 550, enhancedCode: '5.6.0', text: defect === 'line-too-long' ? `Message has a line longer than ${MAX_BOUNCE_LINE} octets` : 'Message header is too large', symbols: [{ name: defect === 'line-too-long' ? 'LINE_TOO_LONG' : 'HEADER_TOO_BIG', evidence }] };
  }
}

/**
 * The unit a source address is counted by: an IPv4 address, or the /64 network of an IPv6 one
 * (one host commonly holds a whole /64 and could rotate through it).
 */
export function rateSource(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups] : headGroups;
  return `${groups.slice(0, 4).map((group) => parseInt(group || '0', 16).toString(16)).join(':')}::/64`;
}

/** "14:05 UTC": when a refused client may try again. */
const utcTime = (ms: number): string => `${new Date(ms).toISOString().slice(11, 16)} UTC`;

export interface BounceListenerDeps {
  config: Config;
  blobs: BlobStore;
  queue: Queue;
  logger: Logger;
  clock: Clock;
  batvKeys: BatvKeyStore;
  /** Rate limits per source IP and per return path. */
  counters: Pick<CounterStore, 'reserve'>;
  tenantFor(domain: string): Promise<BounceTenant | undefined>;
  tls: { key: Buffer; cert: Buffer };
  metrics?: MetricRecorder;
  onQueued?: (queue: string) => void;
}

interface Transaction {
  rcpts: string[];
  tenantId?: string;
}

/** The client's IPv4 address without its IPv6 mapping, as the submission listeners count it. */
function clientAddress(session: SMTPServerSession): string {
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(session.remoteAddress)?.[1] ?? session.remoteAddress;
}

function replyOf(result: CheckResult): SmtpReply {
  return new SmtpReply(result.code ?? 550, result.enhancedCode ?? '5.7.1', result.text ?? 'Refused');
}

export class BounceListener {
  readonly server: SMTPServer;
  private readonly transactions = new Map<string, Transaction>();
  /** Refused RCPTs per connection (session id), whatever the transaction. */
  private readonly refusedRcpts = new Map<string, number>();
  private readonly caps: SessionCaps;

  constructor(private readonly deps: BounceListenerDeps) {
    const { smtp } = deps.config;
    // Anyone on the Internet reaches this port: both caps apply, as on the submission ports.
    this.caps = new SessionCaps({ maxPerAddress: smtp.maxSessionsPerAddress, maxTotal: smtp.bounceMaxSessions, exemptions: smtp.sessionCapExemptions });
    const onFailure = (error: unknown, session: SMTPServerSession | undefined, where: string): void => {
      deps.metrics?.inc('outpost_smtp_session_failures_total', { listener: 'bounce' });
      deps.logger.error('session failed; closing it', { listener: 'bounce', session: session?.id, clientIp: session?.remoteAddress, where, error: errorMessage(error), stack: error instanceof Error ? error.stack : undefined });
    };
    this.server = new SMTPServer(guardHooks({
      name: deps.config.hostname,
      banner: 'Outpost bounce listener',
      key: deps.tls.key,
      cert: deps.tls.cert,
      disabledCommands: ['AUTH'],
      size: MAX_BOUNCE_BYTES,
      rejectOversized: true,
      maxCommandLength: deps.config.smtp.maxCommandLength,
      socketTimeout: deps.config.smtp.socketTimeoutSeconds * 1000,
      closeTimeout: deps.config.smtp.closeTimeoutSeconds * 1000,
      disableReverseLookup: true,
      hideDSN: true,
      hideREQUIRETLS: true,
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      // Sessions over the caps are answered 421 4.7.0 in onConnect; this is only a backstop.
      maxClients: smtp.bounceMaxSessions + smtp.maxSessionsPerAddress,
      onConnect: (session, callback) => this.onConnect(session, callback),
      onMailFrom: (_address, session, callback) => {
        this.transactions.set(session.id, { rcpts: [] });
        callback();
      },
      onRcptTo: (address, session, callback) => this.onRcptTo(address, session, callback),
      onData: (stream, session, callback) => this.onData(stream, session, callback),
      onClose: (session) => {
        this.caps.release(session.id);
        this.transactions.delete(session.id);
        this.refusedRcpts.delete(session.id);
      },
    }, onFailure));
    logListenerErrors(this.server, { listener: 'bounce', logger: deps.logger, metrics: deps.metrics });
    onSessionFailure(this.server, onFailure);
    setGreetingDelay(this.server, smtp.bounceGreetingDelayMs);
  }

  private onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const overCap = this.caps.admit(session.id, clientAddress(session));
    if (overCap) return callback(this.refused(session, overCap, 'connect'));
    callback();
  }

  private refused(session: SMTPServerSession, result: CheckResult, phase: string): SmtpReply {
    this.deps.logger.info('bounce refused', {
      phase,
      session: session.id,
      clientIp: session.remoteAddress,
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
      symbols: result.symbols,
    });
    this.deps.metrics?.inc('outpost_smtp_refusals_total', {
      phase: `bounce-${phase}`,
      reason: result.symbols[0]?.name ?? 'UNSPECIFIED',
    });
    return replyOf(result);
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const transaction = this.transactions.get(session.id) ?? { rcpts: [] };
    this.transactions.set(session.id, transaction);
    (async () => {
      const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const now = this.deps.clock.now();
      const { bounces } = this.deps.config;
      // Every RCPT counts against the source IP, refused ones too: guessing tags costs as much as bouncing.
      const source = rateSource(session.remoteAddress);
      const byClient = await this.rateLimit(`bounce:client:${source}`, bounces.perClientIpPerHour, now);
      if (byClient) throw this.refused(session, byClient(BOUNCE_LISTENER_SYMBOLS.clientRate, `Too many bounces from ${source}`), 'rcpt');
      const result = await decideBounceRcpt({
        mailFrom,
        rcptTo: address.address,
        acceptedRcpts: transaction.rcpts,
        now,
        tenantFor: (domain) => this.deps.tenantFor(domain),
        batvKeys: await this.deps.batvKeys.keys(now),
      });
      if (result.action !== 'accept') throw this.refusedRcpt(session, result);
      // Counted by the address under the tag: a new day's tag does not start the count again.
      const byReturnPath = await this.rateLimit(`bounce:return-path:${batvStrip(address.address).toLowerCase()}`, bounces.perReturnPathPerHour, now);
      if (byReturnPath) throw this.refused(session, byReturnPath(BOUNCE_LISTENER_SYMBOLS.returnPathRate, `Too many bounces for <${address.address}>`), 'rcpt');
      const evidence = result.symbols[0]?.evidence;
      if (evidence && typeof evidence === 'object' && typeof evidence.tenantId === 'string') transaction.tenantId = evidence.tenantId;
      transaction.rcpts.push(address.address);
    })()
      .then(() => callback())
      .catch((error: unknown) => callback(error instanceof SmtpReply ? error : this.internalError(error)));
  }

  /** Consumes one unit of an hourly limit; on refusal, a maker of the 450 4.7.1 answer. */
  private async rateLimit(key: string, limit: number, now: number): Promise<((symbol: string, what: string) => CheckResult) | undefined> {
    const outcome = await this.deps.counters.reserve({ limits: [{ key, units: 1, limit, windowMs: HOUR_MS }] });
    if (outcome.ok) return undefined;
    const { retryAt } = outcome.refused;
    return (symbol, what) => ({
      action: 'tempfail',
      code: 450,
      enhancedCode: '4.7.1',
      text: `${what} (limit ${limit} an hour); retry after ${utcTime(Math.max(retryAt, now))}`,
      symbols: [{ name: symbol, evidence: { key, limit, retryAt } }],
    });
  }

  /** A refused RCPT; the last one allowed on a connection closes it (421 4.7.0). */
  private refusedRcpt(session: SMTPServerSession, result: CheckResult): SmtpReply {
    const count = (this.refusedRcpts.get(session.id) ?? 0) + 1;
    this.refusedRcpts.set(session.id, count);
    const limit = this.deps.config.bounces.maxRefusedRcpts;
    if (count < limit) return this.refused(session, result, 'rcpt');
    this.refused(session, { ...result, symbols: [{ name: BOUNCE_LISTENER_SYMBOLS.tooManyRefusals, evidence: { refused: count, limit } }, ...result.symbols] }, 'rcpt');
    return new SmtpReply(421, '4.7.0', 'Too many refused recipients; closing connection');
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const transaction = this.transactions.get(session.id) ?? { rcpts: [] };
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const now = this.deps.clock.now();
    const id = newQueueId(now);
    const blobKey = `${BOUNCE_BLOB_PREFIX}${new Date(now).toISOString().slice(0, 10)}/${id}.eml`;
    const inspector = new DataInspector(MAX_BOUNCE_BYTES, MAX_BOUNCE_LINE);
    stream.pipe(inspector);
    // A client that resets the connection in DATA: the stream ends without 'end'; fail the blob write.
    stream.once('error', () => undefined);
    inspector.on('error', () => undefined); // reported by the blob store's pipeline
    stream.once('close', () => {
      if (!stream.readableEnded && !inspector.destroyed) inspector.destroy(new Error('the client closed the connection during DATA'));
    });
    (async () => {
      await this.deps.blobs.putStream(blobKey, inspector);
      const decision = decideBounceData({ mailFrom, rcptTo: transaction.rcpts });
      const defect = stream.sizeExceeded ? 'too-big' : inspector.defect;
      if (decision.action !== 'accept' || defect) {
        await this.deps.blobs.delete(blobKey);
        if (decision.action !== 'accept') throw this.refused(session, decision, 'data');
        if (defect) throw this.refused(session, defectRefusal(defect, inspector.defectAt), 'data');
      }
      const envelope: Envelope = {
        messageId: id,
        tenantId: transaction.tenantId ?? '',
        userId: '',
        identity: 'bounce',
        mailFrom: '',
        rcptTo: transaction.rcpts,
        blobKey,
        size: inspector.bytes,
        receivedAt: now,
        clientIp: session.remoteAddress,
        helo: session.hostNameAppearsAs ?? '',
      };
      await this.deps.queue.send('bounce', JSON.stringify(envelope));
      this.deps.metrics?.inc('outpost_bounces_accepted_total');
      this.deps.logger.info('bounce queued', { id, rcpt: transaction.rcpts[0], clientIp: session.remoteAddress });
      this.deps.onQueued?.('bounce');
      return id;
    })()
      .then((queued) => callback(null, `2.0.0 Ok: queued as ${queued}`))
      .catch((error: unknown) => {
        stream.unpipe(inspector);
        stream.resume();
        callback(error instanceof SmtpReply ? error : this.internalError(error));
      })
      .finally(() => this.transactions.set(session.id, { rcpts: [] }));
  }

  private internalError(error: unknown): SmtpReply {
    this.deps.logger.error('bounce listener internal error', { error: errorMessage(error) });
    return new SmtpReply(451, '4.3.0', 'Temporary local problem; please try again later');
  }

  listen(host: string, port: number): Promise<number> {
    return listenSmtp(this.server, host, port);
  }

  close(): Promise<void> {
    return closeSmtp(this.server);
  }
}
