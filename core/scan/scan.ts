// One message through the content checks, in order: MIME safety, virus, spam engine, attachment
// hashes, fuzzy fingerprint, bulk detector; then the verdict, then learning from it.
// An engine that throws gives a `retry` verdict: the message is never delivered unscanned.
import { simpleParser, type ParsedMail } from 'mailparser';
import type { Symbol } from '../checks/check.js';
import type { Config } from '../config.js';
import type { Clock, Envelope } from '../ports.js';
import type { UserSettings } from '../settings.js';
import type { SpamEngine, VirusScanner } from './engines.js';
import { fuzzyFingerprint, sha256Hex, type FingerprintStore } from './fingerprint.js';
import { mimeSafetySymbols } from './mime.js';
import { SCAN_SYMBOLS, decideVerdict, deferredVerdict, type ScanFindings, type Verdict } from './verdict.js';

export interface ScanDeps {
  virusScanner?: VirusScanner;
  spamEngine: SpamEngine;
  fingerprints: FingerprintStore;
  clock: Clock;
  scanning: Config['scanning'];
}

export interface ScanOutcome {
  verdict: Verdict;
  /** SHA-256 of each attachment, for learning and the quarantine record. */
  attachmentHashes: Array<{ sha256: string; filename?: string }>;
  fingerprint: string | null;
  subject: string | null;
}

interface ParsedParts {
  /** mailparser's whole parse, handed to the spam engine (the built-in rules read it instead of parsing again). */
  mail: ParsedMail;
  subject: string | null;
  text: string;
  attachments: Array<{ sha256: string; filename?: string }>;
}

/**
 * mailparser 3.14 never settles on some messages (a top-level message/rfc822 with no body and an
 * inline Content-Disposition with a filename, found by fuzzing): without a deadline one such
 * message would hold the scan stage forever. Past it, the message is malformed.
 */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the MIME parser did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

async function parse(raw: Buffer, timeoutMs: number): Promise<ParsedParts | Symbol> {
  let parsed: ParsedMail;
  try {
    parsed = await withDeadline(simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true }), timeoutMs);
  } catch (error: unknown) {
    return { name: SCAN_SYMBOLS.parseError, evidence: { error: error instanceof Error ? error.message : String(error) } };
  }
  const html = typeof parsed.html === 'string' ? parsed.html.replace(/<[^>]*>/g, ' ') : '';
  return {
    mail: parsed,
    subject: parsed.subject ?? null,
    text: `${parsed.subject ?? ''}\n${parsed.text ?? html}`,
    attachments: parsed.attachments.map((item) => ({
      sha256: sha256Hex(item.content),
      ...(item.filename ? { filename: item.filename } : {}),
    })),
  };
}

export async function scanMessage(raw: Buffer, envelope: Envelope, settings: UserSettings, deps: ScanDeps): Promise<ScanOutcome> {
  const { scanning } = deps;
  const mime = mimeSafetySymbols(raw, { maxDepth: scanning.maxMimeDepth, maxParts: scanning.maxMimeParts });
  const structureUnsafe = mime.some((item) => item.name !== 'FROM_COUNT');
  const findings: ScanFindings = { mime, blockedHashes: [] };
  const outcome: ScanOutcome = { verdict: deferredVerdict('none', 'not scanned'), attachmentHashes: [], fingerprint: null, subject: null };
  // A message over the MIME caps is not handed to the parser or the spam engine at all (parser bomb).
  let parts: ParsedParts | undefined;
  if (!structureUnsafe) {
    const parsed = await parse(raw, scanning.engineTimeoutMs);
    if ('name' in parsed) mime.push(parsed);
    else parts = parsed;
  }
  if (parts) {
    outcome.subject = parts.subject;
    outcome.attachmentHashes = parts.attachments;
  }

  if (deps.virusScanner) {
    try {
      findings.virus = { ...(await deps.virusScanner.scan(raw)), engine: deps.virusScanner.name };
    } catch (error: unknown) {
      return { ...outcome, verdict: deferredVerdict(deps.virusScanner.name, error) };
    }
  }
  // A message the parser refused is quarantined as malformed whatever the spam engine says, and
  // an engine that parses it too (the built-in rules) would fail on it and defer it forever.
  if (parts) {
    try {
      const meta = {
        user: envelope.identity,
        clientIp: envelope.clientIp,
        helo: envelope.helo,
        mailFrom: envelope.mailFrom,
        rcptTo: envelope.rcptTo,
        queueId: envelope.messageId,
      };
      findings.spam = { ...(await deps.spamEngine.check(raw, meta, parts.mail)), engine: deps.spamEngine.name };
    } catch (error: unknown) {
      return { ...outcome, verdict: deferredVerdict(deps.spamEngine.name, error) };
    }
  }

  if (parts) {
    const byHash = new Map(parts.attachments.map((item) => [item.sha256, item.filename]));
    const blocked = await deps.fingerprints.findBlockedHashes([...byHash.keys()]);
    findings.blockedHashes = blocked.map((entry) => {
      const filename = byHash.get(entry.sha256);
      return filename ? { ...entry, filename } : entry;
    });
    const fingerprint = fuzzyFingerprint(parts.text, scanning.fuzzyMinWords);
    outcome.fingerprint = fingerprint;
    if (fingerprint) {
      const match = await deps.fingerprints.nearestSpamFingerprint(fingerprint, scanning.fuzzyMaxDistance);
      if (match) findings.fuzzySpam = match;
      const now = deps.clock.now();
      await deps.fingerprints.recordSighting(fingerprint, envelope.userId || envelope.identity, now);
      findings.bulkSenders = await deps.fingerprints.countSenders(
        fingerprint,
        scanning.fuzzyMaxDistance,
        now - scanning.bulkWindowMinutes * 60_000,
      );
    }
  }

  outcome.verdict = decideVerdict(findings, {
    spamThreshold: settings.spamThreshold,
    blockSpam: settings.blockSpam,
    fuzzySpamScore: scanning.fuzzySpamScore,
    bulkScore: scanning.bulkScore,
    bulkIdentities: scanning.bulkIdentities,
  });
  return outcome;
}

/**
 * Feeds the blocklists from a verdict: attachments of a virus verdict are blocked; with
 * learnFromSpam, the body fingerprint and attachments of a spam verdict too.
 */
export async function learnFromVerdict(outcome: ScanOutcome, envelope: Envelope, deps: Pick<ScanDeps, 'fingerprints' | 'clock' | 'scanning'>): Promise<void> {
  const { verdict } = outcome;
  const now = deps.clock.now();
  const learnSpam = verdict.spam && deps.scanning.learnFromSpam;
  if (verdict.kind === 'virus' || learnSpam) {
    const source = verdict.kind === 'virus' ? 'virus' : 'spam';
    for (const attachment of outcome.attachmentHashes) {
      await deps.fingerprints.blockHash({
        sha256: attachment.sha256,
        source,
        reason: `learned from ${source} verdict on message ${envelope.messageId}`,
        addedAt: now,
      });
    }
  }
  if (learnSpam && outcome.fingerprint) await deps.fingerprints.addSpamFingerprint(outcome.fingerprint, now);
}
