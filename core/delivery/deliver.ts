// Delivers one envelope over SMTP and says, per recipient, what became of it: delivered,
// temporary failure (try again later) or permanent failure (bounce). Recipients are grouped by
// route (one transaction per domain, or one for the smarthost); each group tries its targets in
// MX order until one takes responsibility for the recipients, like Postfix's smtp client.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type { Config } from '../config.js';
import type { Envelope, Logger, Resolver } from '../ports.js';
import { recipientDomain, routeDomain, type DeliveryTarget, type Route } from './route.js';
import { attemptBudget, DeliveryScheduler, SLOT_WAIT_MS, type AttemptBudget } from './scheduler.js';
import type { SmtpLogin } from './connection-cache.js';
import type { Mailer, MailerOutcome } from '../ports/mailer.js';

/** Where a diagnostic came from: the remote server's SMTP answer, or our own observation. */
export type DiagnosticType = 'smtp' | 'x-outpost';

export interface Delivered {
  recipient: string;
  result: 'delivered';
  /** The remote server's final answer, e.g. "250 2.0.0 Ok: queued as 4Xk". */
  response: string;
  remoteMta: string;
}

export interface Failed {
  recipient: string;
  result: 'temporary' | 'permanent';
  /** RFC 3463 enhanced status code, e.g. 5.1.1. */
  status: string;
  diagnostic: string;
  diagnosticType: DiagnosticType;
  /** The host that gave the answer, when one was reached. */
  remoteMta?: string;
}

/** Not attempted: the destination had no free slot (delivery.destinationConcurrency). Try again soon; not an attempt. */
export interface Postponed {
  recipient: string;
  result: 'postponed';
}

export type RecipientOutcome = Delivered | Failed | Postponed;

/**
 * Last step before the bytes leave: DKIM signing and BATV rewriting of the envelope sender
 * plug in here. It runs once per delivery attempt.
 */
export type PrepareMessage = (raw: Buffer, envelope: Envelope) => Promise<{ raw: Buffer; mailFrom: string }>;

export interface DeliveryOptions {
  config: Pick<Config, 'hostname' | 'delivery'>;
  resolver: Resolver;
  logger: Logger;
  prepare?: PrepareMessage;
  /** Port of MX hosts (25); tests point it at a local test MX. */
  mxPort?: number;
  /** Per-destination slots, shared by every delivery of the process (default: one for this call only). */
  scheduler?: DeliveryScheduler;
  /** The login for the smarthost (delivery.relayHost) when it asks for AUTH; never sent to MX hosts. */
  smarthostAuth?: SmtpLogin;
  /**
   * A mailer that routes by itself (SES): when given, recipients are neither routed by MX nor
   * sent over SMTP; the prepared message goes to the mailer for all of them at once.
   */
  mailer?: Mailer;
}

/**
 * Idle limit once connected. Shorter than RFC 5321's 10 minutes for the final dot: an attempt
 * must end well within the queue's visibility timeout (5 minutes by default), or the job becomes
 * visible again and a second worker would deliver the same message in parallel.
 */
const SOCKET_TIMEOUT_MS = 120_000;

const identity: PrepareMessage = async (raw, envelope) => ({ raw, mailFrom: envelope.mailFrom });

/**
 * Node's messages for a certificate that did not verify (nodemailer replaces their codes with
 * its own ESOCKET): wrong name, unknown or self-signed issuer, expired, not yet valid.
 */
const CERTIFICATE_FAILURE = /certificate|altnames|issuer/i;

function verifiesTls(target: DeliveryTarget, config: DeliveryOptions['config']): boolean {
  return config.delivery.requireTls || target.verifyTls === true;
}

const caFiles = new Map<string, string[]>();

/** The system's CAs plus those of delivery.tlsCaFile (Node's `ca` replaces the defaults, so both are given). */
function trustedCas(file: string | undefined): { ca?: string[] } {
  if (file === undefined) return {};
  let cas = caFiles.get(file);
  if (!cas) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (error: unknown) {
      throw new Error(`delivery.tlsCaFile ${file} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
    cas = [...rootCertificates, pem];
    caFiles.set(file, cas);
  }
  return { ca: cas };
}

/** One line, no control characters: remote answers end up in logs, headers and DSNs. */
function oneLine(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '').trim();
}

/** The enhanced status in an SMTP answer ("550 5.1.1 ..."), else one derived from the reply code. */
export function enhancedStatus(response: string, replyCode?: number): string {
  const match = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(response);
  if (match?.[1]) return match[1];
  const klass = replyCode !== undefined ? Math.floor(replyCode / 100) : Number(response.charAt(0));
  return klass === 5 ? '5.0.0' : klass === 2 ? '2.0.0' : '4.0.0';
}

interface SmtpError {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  message: string;
  rejectedErrors?: SmtpError[];
}

function asSmtpError(error: unknown): SmtpError {
  if (typeof error !== 'object' || error === null) return { message: String(error) };
  const field = (name: string): unknown => (name in error ? (error as Record<string, unknown>)[name] : undefined);
  const text = (name: string): string | undefined => {
    const value = field(name);
    return typeof value === 'string' ? value : undefined;
  };
  const code = field('responseCode');
  const nested = field('rejectedErrors');
  return {
    code: text('code'),
    command: text('command'),
    response: text('response'),
    responseCode: typeof code === 'number' ? code : undefined,
    recipient: text('recipient'),
    message: text('message') ?? String(error),
    rejectedErrors: Array.isArray(nested) ? nested.map(asSmtpError) : undefined,
  };
}

/** A failure described from an SMTP error: the remote answer if there was one, else our view of it. */
function describe(error: SmtpError, target: DeliveryTarget): Omit<Failed, 'recipient'> {
  const remoteMta = target.name;
  if (error.response && error.responseCode !== undefined && error.responseCode >= 400) {
    return {
      result: error.responseCode >= 500 ? 'permanent' : 'temporary',
      status: enhancedStatus(error.response, error.responseCode),
      diagnostic: oneLine(error.response),
      diagnosticType: 'smtp',
      remoteMta,
    };
  }
  // No SMTP answer: connection refused, timeout, TLS failure, dropped connection. All may heal.
  const connecting = error.command === undefined || error.command === 'CONN';
  const status = error.code === 'ETLS' ? '4.7.5' : connecting ? '4.4.1' : '4.4.2';
  const where = `${target.name}[${target.address}]:${target.port}`;
  return {
    result: 'temporary',
    status,
    diagnostic: oneLine(`${connecting ? 'connect' : error.command} to ${where}: ${error.message}`),
    diagnosticType: 'x-outpost',
    remoteMta,
  };
}

type TransactionResult =
  | { kind: 'done'; outcomes: RecipientOutcome[] }
  /** Nobody took the recipients on this host: try the next one (connect, greeting, EHLO, MAIL). */
  | { kind: 'next'; failure: Omit<Failed, 'recipient'> };

/** Where one transaction goes and which cached sessions it may use. */
interface Conveyance {
  destination: string;
  scheduler: DeliveryScheduler;
}

async function transaction(
  target: DeliveryTarget,
  mailFrom: string,
  recipients: string[],
  raw: Buffer,
  options: DeliveryOptions,
  ignoreTls: boolean,
  budget: AttemptBudget,
  via: Conveyance,
): Promise<TransactionResult> {
  const { config } = options;
  const timeout = Math.max(1, Math.min(config.delivery.connectTimeoutSeconds * 1000, budget.remaining()));
  const verify = verifiesTls(target, config);
  const servername = isIP(target.name) ? {} : { servername: target.name };
  const session: SMTPConnection.Options = {
    host: target.address,
    port: target.port,
    name: config.hostname,
    secure: false,
    // Opportunistic STARTTLS without certificate checks, like Postfix's "may" level: most MX
    // certificates do not match their names, and plaintext would be the only alternative.
    // Verified TLS (requireTls, a smarthost by name) is Postfix's "secure" level: no plaintext.
    ignoreTLS: ignoreTls,
    requireTLS: verify,
    tls: verify
      ? { rejectUnauthorized: true, minVersion: 'TLSv1.2', ...servername, ...trustedCas(config.delivery.tlsCaFile) }
      : { rejectUnauthorized: false, ...servername },
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: SOCKET_TIMEOUT_MS,
    logger: false,
  };
  // A session is reused only at the same TLS level: a verified one never carries mail for an
  // opportunistic route, and a plaintext fallback never for a route that still tries STARTTLS.
  const level = verify ? `verify:${config.delivery.tlsCaFile ?? ''}` : ignoreTls ? 'plain' : 'may';
  const auth = config.delivery.relayHost ? options.smarthostAuth : undefined;
  const key = { destination: via.destination, route: `${target.name}|${target.address}|${target.port}|${level}|${auth?.user ?? ''}` };
  try {
    const info: unknown = await via.scheduler.connections.send(key, session, mailFrom, recipients, raw, auth);
    return { kind: 'done', outcomes: outcomesOfAccepted(info, recipients, target) };
  } catch (caught: unknown) {
    const error = asSmtpError(caught);
    if (error.code === 'ETLS' && !ignoreTls && !verify) {
      // A broken STARTTLS is no reason to keep the mail: Postfix "may" falls back to plaintext too.
      options.logger.warn('STARTTLS failed; retrying in plaintext', { host: target.name, error: error.message });
      return transaction(target, mailFrom, recipients, raw, options, true, budget, via);
    }
    // No SMTP answer came with it: a remote reply that mentions certificates is no TLS failure.
    const certificate = verify && error.responseCode === undefined && CERTIFICATE_FAILURE.test(error.message);
    if (error.code === 'ETLS' || certificate) {
      // Only reached when TLS is verified: a receiver without working STARTTLS or with a
      // certificate that does not verify may get fixed; never fall back to plaintext.
      const where = `${target.name}[${target.address}]:${target.port}`;
      const answer = error.response ? oneLine(error.response) : error.message;
      const why = config.delivery.requireTls ? 'TLS is required (delivery.requireTls)' : `the smarthost ${target.name} is verified`;
      options.logger.warn('verified TLS failed; not delivering in plaintext', { host: target.name, address: target.address, error: answer });
      return {
        kind: 'next',
        failure: {
          result: 'temporary',
          status: certificate ? '4.7.5' : '4.7.10',
          diagnostic: oneLine(`${why} but ${certificate ? 'the certificate of' : 'STARTTLS with'} ${where} ${certificate ? 'did not verify' : 'failed'}: ${answer}`),
          diagnosticType: 'x-outpost',
          remoteMta: target.name,
        },
      };
    }
    if (error.rejectedErrors && error.rejectedErrors.length > 0) {
      // Every recipient was refused at RCPT: each has its own answer.
      return { kind: 'done', outcomes: outcomesOfRejections(error.rejectedErrors, recipients, target) };
    }
    const failure = describe(error, target);
    if (error.command === 'RCPT TO' || error.command === 'DATA' || error.code === 'EMESSAGE') {
      // The server took part in the transaction and answered for these recipients.
      return { kind: 'done', outcomes: recipients.map((recipient) => ({ recipient, ...failure })) };
    }
    if (error.command === 'MAIL FROM' && failure.result === 'permanent') {
      return { kind: 'done', outcomes: recipients.map((recipient) => ({ recipient, ...failure })) };
    }
    return { kind: 'next', failure };
  }
}

function outcomesOfRejections(rejections: SmtpError[], recipients: string[], target: DeliveryTarget): RecipientOutcome[] {
  return recipients.map((recipient): RecipientOutcome => {
    const rejection = rejections.find((item) => item.recipient === recipient);
    if (rejection) return { recipient, ...describe(rejection, target) };
    return { recipient, result: 'temporary', status: '4.4.2', diagnostic: 'no answer to RCPT TO', diagnosticType: 'x-outpost', remoteMta: target.name };
  });
}

function outcomesOfAccepted(info: unknown, recipients: string[], target: DeliveryTarget): RecipientOutcome[] {
  const record = typeof info === 'object' && info !== null ? (info as Record<string, unknown>) : {};
  const accepted = Array.isArray(record.accepted) ? record.accepted.map(String) : [];
  const rejections = Array.isArray(record.rejectedErrors) ? record.rejectedErrors.map(asSmtpError) : [];
  const response = typeof record.response === 'string' ? oneLine(record.response) : '250';
  const refused = outcomesOfRejections(rejections, recipients, target);
  return recipients.map((recipient, index): RecipientOutcome => {
    if (accepted.includes(recipient)) return { recipient, result: 'delivered', response, remoteMta: target.name };
    const outcome = refused[index];
    return outcome ?? { recipient, result: 'temporary', status: '4.4.2', diagnostic: 'no answer', diagnosticType: 'x-outpost' };
  });
}

/** Every recipient of a domain that could not be routed shares the routing failure. */
function unroutable(route: Extract<Route, { kind: 'failed' }>, recipients: string[]): RecipientOutcome[] {
  const result = route.temporary ? 'temporary' : 'permanent';
  return recipients.map((recipient) => ({ recipient, result, status: route.status, diagnostic: route.diagnostic, diagnosticType: 'x-outpost' }));
}

async function deliverGroup(route: Extract<Route, { kind: 'targets' }>, mailFrom: string, recipients: string[], raw: Buffer, options: DeliveryOptions, via: Conveyance): Promise<RecipientOutcome[]> {
  const { delivery } = options.config;
  const budget = attemptBudget(delivery.attemptTimeoutSeconds * 1000);
  // Postfix's smtp_mx_address_limit: a domain publishing many dead hosts costs a bounded time;
  // the others get their turn at the next attempt.
  const targets = route.targets.slice(0, delivery.mxAddressLimit);
  let last: Omit<Failed, 'recipient'> | undefined;
  for (const [index, target] of targets.entries()) {
    if (budget.remaining() <= 0) {
      last = {
        result: 'temporary',
        status: last?.status ?? '4.4.1',
        diagnostic: `attempt time budget of ${delivery.attemptTimeoutSeconds}s (delivery.attemptTimeoutSeconds) spent after ${index} of ${targets.length} addresses; last: ${last?.diagnostic ?? 'none'}`,
        diagnosticType: 'x-outpost',
        ...(last?.remoteMta ? { remoteMta: last.remoteMta } : {}),
      };
      break;
    }
    const outcome = await transaction(target, mailFrom, recipients, raw, options, false, budget, via);
    if (outcome.kind === 'done') return outcome.outcomes;
    last = outcome.failure;
    options.logger.info('delivery target unavailable; trying the next one', { host: target.name, address: target.address, diagnostic: last.diagnostic });
  }
  // Every host refused the session. Even a 5xx greeting from all of them is deferred: Postfix's
  // smtp_skip_5xx_greeting habit, since a misbehaving front end is no verdict on the recipient.
  const failure: Omit<Failed, 'recipient'> = last
    ? { ...last, result: 'temporary', status: last.status.startsWith('5') ? `4${last.status.slice(1)}` : last.status }
    : { result: 'temporary', status: '4.4.1', diagnostic: 'no delivery target', diagnosticType: 'x-outpost' };
  return recipients.map((recipient) => ({ recipient, ...failure }));
}

/**
 * Delivers `raw` to `recipients` (a subset of envelope.rcptTo: those still pending). Never throws
 * for SMTP or DNS outcomes; throws only when `prepare` does (e.g. a signing key cannot be read),
 * which the caller treats as "retry the whole job".
 */
export async function deliverEnvelope(
  envelope: Envelope,
  raw: Buffer,
  recipients: string[],
  options: DeliveryOptions,
): Promise<RecipientOutcome[]> {
  // Signed once, and only when something is sent: a job whose destinations are all full is
  // postponed without signing (and without logging a signature) each time.
  let preparing: ReturnType<PrepareMessage> | undefined;
  const prepared = (): ReturnType<PrepareMessage> => (preparing ??= (options.prepare ?? identity)(raw, envelope));
  if (options.mailer) return sendThroughMailer(options.mailer, envelope, recipients, prepared);
  const groups = new Map<string, string[]>();
  for (const recipient of recipients) {
    // With a smarthost all recipients share one transaction.
    const key = options.config.delivery.relayHost ? '' : recipientDomain(recipient);
    groups.set(key, [...(groups.get(key) ?? []), recipient]);
  }
  // Without a scheduler shared by the process, sessions cannot outlive this call: none are kept.
  const scheduler = options.scheduler ?? new DeliveryScheduler({ perDestination: options.config.delivery.destinationConcurrency, waitMs: SLOT_WAIT_MS });
  const results = await Promise.all(
    [...groups].map(async ([domain, group]): Promise<RecipientOutcome[]> => {
      const { relayHost } = options.config.delivery;
      const route = await routeDomain(domain, {
        relayHost,
        resolver: options.resolver,
        mxPort: options.mxPort,
        allowPrivateAddresses: options.config.delivery.allowPrivateMxAddresses,
      });
      if (route.kind === 'failed') return unroutable(route, group);
      const destination = relayHost ? `relay:${relayHost}` : domain;
      const slot = await scheduler.acquire(destination);
      if (!slot) {
        options.logger.info('destination at its concurrency limit; postponed', { destination, recipients: group.length });
        return group.map((recipient) => ({ recipient, result: 'postponed' }));
      }
      try {
        const message = await prepared();
        return await deliverGroup(route, message.mailFrom, group, message.raw, options, { destination, scheduler });
      } finally {
        slot.release();
      }
    }),
  );
  const byRecipient = new Map(results.flat().map((outcome) => [outcome.recipient, outcome]));
  return recipients.map(
    (recipient) =>
      byRecipient.get(recipient) ?? { recipient, result: 'temporary', status: '4.3.0', diagnostic: 'not attempted', diagnosticType: 'x-outpost' },
  );
}

/** The provider's outcomes, one per recipient (one it did not mention is a temporary failure). */
async function sendThroughMailer(mailer: Mailer, envelope: Envelope, recipients: string[], prepared: () => ReturnType<PrepareMessage>): Promise<MailerOutcome[]> {
  const message = await prepared();
  const { outcomes } = await mailer.send({
    mailFrom: message.mailFrom,
    rcptTo: recipients,
    raw: message.raw,
    tags: { tenantId: envelope.tenantId, userId: envelope.userId, messageId: envelope.messageId },
  });
  const byRecipient = new Map(outcomes.map((outcome) => [outcome.recipient, outcome]));
  return recipients.map(
    (recipient): MailerOutcome => byRecipient.get(recipient) ?? { recipient, result: 'temporary', status: '4.3.0', diagnostic: 'no answer from the mailer', diagnosticType: 'x-outpost' },
  );
}
