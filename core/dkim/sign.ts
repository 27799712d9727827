// DKIM signing (RFC 6376, RFC 8463) of outgoing mail, and the delivery hook that signs with the
// right key and BATV-tags the envelope sender.
//
// Why not mailauth's dkimSign() as is: it lists in h= only the fields present, so it cannot
// over-sign (list a singleton once more than it occurs, so that no second From, Subject... can be
// added without breaking the signature), and it silently ignores `headerList` given as an array.
// We choose the fields ourselves and reuse mailauth's own pieces for the rest: header parsing,
// relaxed header canonicalisation, the relaxed body hash and the signature header format.
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { BoundedMemo } from '../bounded-memo.js';
import { batvTag, defaultBatvPolicy, type BatvKeyStore, type BatvPolicy } from '../batv.js';
import { isRelayNotice } from '../delivery/notice.js';
import { headerBlock, headerValues, parseHeaderFrom } from '../headers.js';
import type { Clock, Envelope } from '../ports.js';
import type { UserSettings } from '../settings.js';
import type { DkimAlgorithm, DkimKeyStore } from './keys.js';

// Static imports (typed in mailauth-internals.d.ts), so that a bundler can follow them: a
// `createRequire` of a package subpath is invisible to esbuild and fails in a Lambda bundle.
import tools from 'mailauth/lib/tools.js';
import body from 'mailauth/lib/dkim/body/index.js';

type ParsedHeader = ReturnType<typeof tools.parseHeaders>['parsed'][number];

/**
 * Fields that occur at most once in a message (RFC 5322 §3.6, RFC 2045, RFC 2369/8058): signed
 * once more than present, so that adding one breaks the signature (RFC 6376 §8.15).
 */
export const OVERSIGNED_FIELDS = [
  'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc', 'In-Reply-To', 'References',
  'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding', 'List-Id', 'List-Unsubscribe', 'List-Unsubscribe-Post',
] as const;

/** The rest of RFC 6376 §5.4.1's list: signed where present, as many times as they occur. */
export const SIGNED_FIELDS = [
  'Content-ID', 'Content-Description', 'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc',
  'Resent-Message-ID', 'List-Help', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive',
] as const;

export interface SignOptions {
  domain: string;
  selector: string;
  privateKey: string;
  algorithm: DkimAlgorithm;
  /** Signature time (t=); defaults to now. */
  signTime?: number;
}

/**
 * Bare CR and bare LF become CRLF, as nodemailer's SMTP client would do on the wire. A message
 * without any (what the ingress accepts) is returned as it is, not copied.
 */
export function normaliseLineEndings(raw: Buffer): Buffer {
  if (!hasBareLineEnding(raw)) return raw;
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

function hasBareLineEnding(raw: Buffer): boolean {
  for (let at = raw.indexOf(0x0a); at !== -1; at = raw.indexOf(0x0a, at + 1)) {
    if (raw[at - 1] !== 0x0d) return true; // raw[-1] is undefined: an LF first is bare
  }
  for (let at = raw.indexOf(0x0d); at !== -1; at = raw.indexOf(0x0d, at + 1)) {
    if (raw[at + 1] !== 0x0a) return true;
  }
  return false;
}

/**
 * The signature, computed in libuv's thread pool: an RSA-2048 signature is about 0.3 ms of CPU,
 * which the pipeline's thread then spends on the next message instead.
 */
function signInPool(algorithm: string | null, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(algorithm, data, key, (error, signature) => (error ? reject(error) : resolve(signature)));
  });
}

/**
 * Parsed private keys, by their PEM: parsing an RSA-2048 key took about as long as the signature
 * itself, for every message. Bounded (a node signs for a few hundred domains at most); a rotated
 * key is a new PEM, hence a new entry.
 */
const parsedKeys = new BoundedMemo<KeyObject>(1000, (pem) => createPrivateKey(pem));

/** Returns the message with a DKIM-Signature header field prepended (line endings normalised). */
export async function signMessage(raw: Buffer, opts: SignOptions): Promise<Buffer> {
  const message = normaliseLineEndings(raw);
  const split = message.indexOf('\r\n\r\n');
  const headerBlock = split >= 0 ? message.subarray(0, split + 2) : message;
  const bodyPart = split >= 0 ? message.subarray(split + 4) : Buffer.alloc(0);

  const hasher = body.dkimBody('relaxed', 'sha256', false);
  hasher.update(bodyPart);
  const bodyHash = hasher.digest('base64');

  const headers = tools.parseHeaders(headerBlock).parsed;
  if (!headers.some((header) => header.key === 'from')) {
    throw new Error('cannot DKIM-sign a message without a From header field');
  }
  const { names, lines } = chooseSignedFields(headers);

  const values = {
    v: 1,
    a: `${opts.algorithm}-sha256`,
    c: 'relaxed/relaxed',
    d: opts.domain,
    s: opts.selector,
    t: Math.floor((opts.signTime ?? Date.now()) / 1000),
    h: names.join(': '),
    bh: bodyHash,
  };
  // The header being signed is the DKIM-Signature itself with an empty b= (RFC 6376 §3.7).
  // It is folded the way the final field will be: relaxed canonicalisation then reads both alike.
  const unsigned = tools.formatSignatureHeaderLine('DKIM', { ...values, b: '' }, true);
  const canonical = Buffer.concat([...lines.map((line) => tools.formatRelaxedLine(line, '\r\n')), tools.formatRelaxedLine(unsigned)]);
  const key = parsedKeys.get(opts.privateKey);
  // An RSA key would otherwise sign the Ed25519 way (no digest) under a=ed25519-sha256: a
  // signature every verifier rejects, sent as if it were good.
  if (key.asymmetricKeyType !== opts.algorithm) {
    throw new Error(`the DKIM key of ${opts.domain} (selector ${opts.selector}) is ${key.asymmetricKeyType ?? 'of no known type'}, not ${opts.algorithm}`);
  }
  const signature =
    opts.algorithm === 'rsa'
      ? await signInPool('sha256', canonical, key)
      : // RFC 8463: Ed25519 signs the SHA-256 hash of the canonical header, not the header itself.
        await signInPool(null, createHash('sha256').update(canonical).digest(), key);
  const header = tools.formatSignatureHeaderLine('DKIM', { ...values, b: signature.toString('base64') }, true);
  return Buffer.concat([normaliseLineEndings(Buffer.from(`${header}\r\n`, 'latin1')), message]);
}

/**
 * The h= list and the header lines it covers: every instance of the chosen fields, bottom-up as
 * verifiers consume them (RFC 6376 §5.4.2), plus one extra name for each singleton.
 */
function chooseSignedFields(headers: ParsedHeader[]): { names: string[]; lines: Buffer[] } {
  const names: string[] = [];
  const lines: Buffer[] = [];
  const take = (field: string, overSign: boolean): void => {
    const key = field.toLowerCase();
    const present = headers.filter((header) => header.key === key).reverse();
    for (const header of present) {
      names.push(field);
      lines.push(header.line);
    }
    if (overSign) names.push(field);
  };
  for (const field of OVERSIGNED_FIELDS) take(field, true);
  for (const field of SIGNED_FIELDS) take(field, false);
  return { names, lines };
}

/**
 * The domains of the header From's addresses, read by parseHeaderFrom (the parser the policy
 * admitted the message with), or why there is no From to sign for.
 */
export function headerFromDomains(raw: Buffer): { domains: string[] } | { reason: string } {
  const from = parseHeaderFrom(headerValues(headerBlock(normaliseLineEndings(raw)), 'from'));
  if (from.valid) return { domains: [...new Set(from.mailboxes.map((mailbox) => mailbox.domain))] };
  if (from.problem === 'count') return { reason: from.count === 0 ? 'the message has no From header field' : `the message has ${from.count} From header fields` };
  return { reason: 'the From header holds no valid address' };
}

export const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase().replace(/\.$/, '');

// --- the delivery hook ---------------------------------------------------------------------

export interface DkimOutcome {
  signed: boolean;
  selector?: string;
  domain?: string;
  /** Why the message went unsigned (logged in the message log). */
  reason?: string;
}

export interface PreparedMessage {
  raw: Buffer;
  mailFrom: string;
  dkim: DkimOutcome;
  batv: { tagged: boolean; reason?: string };
}

export interface OutgoingPreparerDeps {
  keys: Pick<DkimKeyStore, 'signingKey'>;
  /** The sending user's effective settings (dkimSelector, bounceValidation). */
  settingsFor(envelope: Envelope): Promise<UserSettings> | UserSettings;
  /** The tenant id serving `domain`, undefined when no tenant serves it. */
  tenantOfDomain(domain: string): Promise<string | undefined>;
  batvKeys: Pick<BatvKeyStore, 'current'>;
  batvPolicy?: BatvPolicy;
  /** True when delivery goes out by direct SMTP (SES rewrites the envelope sender, so no BATV there). */
  directSmtp: boolean;
  clock: Clock;
}

export type OutgoingPreparer = (raw: Buffer, envelope: Envelope) => Promise<PreparedMessage>;

/**
 * Signs with the user's `dkimSelector` (or the domain's default key) for the header From's
 * domain, or failing that the envelope sender's, provided the sender's own tenant serves it;
 * then BATV-tags the envelope sender when the tenant's `bounceValidation` is on. The header From
 * is never touched. A queue-id header is added (unsigned) so that bounces can be attributed.
 */
export function makeOutgoingPreparer(deps: OutgoingPreparerDeps): OutgoingPreparer {
  return async (raw, envelope) => {
    const settings = await deps.settingsFor(envelope);
    const withId = Buffer.concat([Buffer.from(`X-Outpost-Queue-Id: ${envelope.messageId}\r\n`, 'latin1'), normaliseLineEndings(raw)]);
    const { raw: signed, dkim } = await signForSender(withId, envelope, settings, deps);
    const batv = await tagSender(envelope, settings, deps);
    return { raw: signed, mailFrom: batv.mailFrom, dkim, batv: batv.outcome };
  };
}

async function signForSender(
  raw: Buffer,
  envelope: Envelope,
  settings: UserSettings,
  deps: OutgoingPreparerDeps,
): Promise<{ raw: Buffer; dkim: DkimOutcome }> {
  if (isRelayNotice(envelope)) {
    return { raw, dkim: { signed: false, reason: 'a notice written by this relay is never signed with a tenant key' } };
  }
  const from = headerFromDomains(raw);
  // DKIM requires From in h=; without a valid one there is nothing a verifier could align with.
  if ('reason' in from) return { raw, dkim: { signed: false, reason: from.reason } };
  const candidates = [...new Set([...from.domains, ...(envelope.mailFrom ? [domainOf(envelope.mailFrom)] : [])])];
  const reasons: string[] = [];
  for (const domain of candidates) {
    // A parent domain's key aligns under relaxed DMARC: news.example.com may sign as example.com.
    for (const signingDomain of selfAndParents(domain)) {
      const owner = await deps.tenantOfDomain(signingDomain);
      if (owner === undefined) continue;
      if (owner !== envelope.tenantId) {
        reasons.push(`${signingDomain} belongs to another tenant`);
        break;
      }
      const key =
        (settings.dkimSelector ? await deps.keys.signingKey(signingDomain, settings.dkimSelector) : undefined) ??
        (await deps.keys.signingKey(signingDomain));
      if (!key) {
        reasons.push(`${signingDomain} has no DKIM key`);
        break;
      }
      const signed = await signMessage(raw, {
        domain: key.domain,
        selector: key.selector,
        privateKey: key.privateKeyPem,
        algorithm: key.algorithm,
        signTime: deps.clock.now(),
      });
      return { raw: signed, dkim: { signed: true, domain: key.domain, selector: key.selector } };
    }
  }
  return {
    raw,
    dkim: { signed: false, reason: reasons.length > 0 ? reasons.join('; ') : `no served domain among ${candidates.join(', ')}` },
  };
}

function selfAndParents(domain: string): string[] {
  const labels = domain.split('.');
  const result: string[] = [];
  for (let at = 0; at <= labels.length - 2; at += 1) result.push(labels.slice(at).join('.'));
  return result;
}

async function tagSender(
  envelope: Envelope,
  settings: UserSettings,
  deps: OutgoingPreparerDeps,
): Promise<{ mailFrom: string; outcome: { tagged: boolean; reason?: string } }> {
  if (!settings.bounceValidation) return { mailFrom: envelope.mailFrom, outcome: { tagged: false, reason: 'bounceValidation is off' } };
  if (!deps.directSmtp) return { mailFrom: envelope.mailFrom, outcome: { tagged: false, reason: 'delivery via SES rewrites the envelope sender' } };
  if (envelope.mailFrom === '') return { mailFrom: '', outcome: { tagged: false, reason: 'null sender' } };
  const now = deps.clock.now();
  const key = await deps.batvKeys.current(now);
  const tagged = batvTag(envelope.mailFrom, key, now, deps.batvPolicy ?? defaultBatvPolicy);
  return { mailFrom: tagged, outcome: { tagged: tagged !== envelope.mailFrom } };
}
