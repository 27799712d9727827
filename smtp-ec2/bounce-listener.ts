// The bounce listener (port 2525 on the single node, 25 on AWS): receives delivery status
// notifications for mail Outpost sent. Admission (null sender, one recipient, a valid BATV tag on
// an address of a served domain) is decided at RCPT, so callouts get the same answer as bounces.
// Accepted bounces are stored and queued on 'bounce' for the bounce handler.
import './smtp-server-patches.js';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { BatvKeyStore } from '../core/batv.js';
import { decideBounceData, decideBounceRcpt, type BounceTenant } from '../core/bounce/admission.js';
import type { CheckResult } from '../core/checks/check.js';
import type { Config } from '../core/config.js';
import { errorMessage } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from '../core/ports.js';
import { DataInspector } from './data-inspector.js';
import { closeSmtp, listenSmtp } from './listen.js';
import { newQueueId, SmtpReply } from './ingress.js';
import './record-deadline.js';
import { guardHooks, logListenerErrors, onSessionFailure } from './session-guard.js';
import { SessionCaps } from './session-caps.js';

/** Bounces carry at most the returned headers and some text; a large one is not a bounce. */
const MAX_BOUNCE_BYTES = 10 * 1024 * 1024;
/** Bounces quote what remote servers saw, long lines included: refusing them would lose the DSN. */
const MAX_BOUNCE_LINE = 65_536;

export interface BounceListenerDeps {
  config: Config;
  blobs: BlobStore;
  queue: Queue;
  logger: Logger;
  clock: Clock;
  batvKeys: BatvKeyStore;
  tenantFor(domain: string): Promise<BounceTenant | undefined>;
  tls: { key: Buffer; cert: Buffer };
  metrics?: Metrics;
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
  private readonly caps: SessionCaps;

  constructor(private readonly deps: BounceListenerDeps) {
    const { smtp } = deps.config;
    // Anyone on the Internet reaches this port: both caps apply, as on the submission ports.
    this.caps = new SessionCaps({ maxPerAddress: smtp.maxSessionsPerAddress, maxTotal: smtp.bounceMaxSessions, exemptions: smtp.sessionCapExemptions });
    const onFailure = (error: unknown, session: SMTPServerSession | undefined, where: string): void => {
      deps.metrics?.inc('outpost_smtp_session_failures_total', 'SMTP sessions closed because of an unexpected exception, by listener.', { listener: 'bounce' });
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
      },
    }, onFailure));
    logListenerErrors(this.server, { listener: 'bounce', logger: deps.logger, metrics: deps.metrics });
    onSessionFailure(this.server, onFailure);
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
    this.deps.metrics?.inc('outpost_smtp_refusals_total', 'SMTP refusals by phase and reason (first symbol).', {
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
      const result = await decideBounceRcpt({
        mailFrom,
        rcptTo: address.address,
        acceptedRcpts: transaction.rcpts,
        now,
        tenantFor: (domain) => this.deps.tenantFor(domain),
        batvKeys: await this.deps.batvKeys.keys(now),
      });
      if (result.action !== 'accept') throw this.refused(session, result, 'rcpt');
      const evidence = result.symbols[0]?.evidence;
      if (evidence && typeof evidence === 'object' && typeof evidence.tenantId === 'string') transaction.tenantId = evidence.tenantId;
      transaction.rcpts.push(address.address);
    })()
      .then(() => callback())
      .catch((error: unknown) => callback(error instanceof SmtpReply ? error : this.internalError(error)));
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const transaction = this.transactions.get(session.id) ?? { rcpts: [] };
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const now = this.deps.clock.now();
    const id = newQueueId(now);
    const blobKey = `bounces/${new Date(now).toISOString().slice(0, 10)}/${id}.eml`;
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
        throw this.refused(
          session,
          defect === 'too-big'
            ? { action: 'reject', code: 552, enhancedCode: '5.3.4', text: 'Bounce too large', symbols: [{ name: 'MESSAGE_TOO_BIG' }] }
            : { action: 'reject', code: 550, enhancedCode: '5.6.0', text: 'Message contains a bare CR or LF, or an over-long line', symbols: [{ name: 'BARE_LINE_ENDING' }] },
          'data',
        );
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
      this.deps.metrics?.inc('outpost_bounces_accepted_total', 'Bounces accepted on the bounce listener.');
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
