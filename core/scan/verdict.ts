// The verdict: every finding of the scan becomes a named symbol with its evidence (like rspamd
// symbols), and the symbols decide the action. Hard findings (a virus, a blocked attachment, an
// unsafe MIME structure) always quarantine; spam is a score against the user's threshold and is
// quarantined only when the user's blockSpam setting is on (otherwise delivered and counted).
import type { Symbol } from '../checks/check.js';
import type { SpamCheckResult, VirusScanResult } from './engines.js';
import type { BlockedHash, FuzzyMatch } from './fingerprint.js';

export type VerdictAction = 'deliver' | 'quarantine' | 'retry';
export type VerdictKind = 'clean' | 'spam' | 'virus' | 'blocked' | 'malformed' | 'deferred';

export interface Verdict {
  action: VerdictAction;
  kind: VerdictKind;
  /** Every reason, in a stable order: MIME, virus, hashes, spam engine, fuzzy, bulk. */
  symbols: Symbol[];
  /** Spam score: the engine's score plus the fuzzy and bulk scores. */
  score: number;
  /** true when the score reached the threshold (delivered anyway when blockSpam is off). */
  spam: boolean;
}

/** Stable symbol names of the scan; engines' own rule names are passed through inside SPAM_SCORE. */
export const SCAN_SYMBOLS = {
  virus: 'VIRUS_FOUND',
  spamScore: 'SPAM_SCORE',
  gtube: 'GTUBE',
  hashBlocked: 'ATTACHMENT_HASH_BLOCKED',
  fuzzySpam: 'FUZZY_SPAM_MATCH',
  bulk: 'BULK_CAMPAIGN',
  parseError: 'MIME_PARSE_ERROR',
  engineError: 'SCAN_ENGINE_ERROR',
} as const;

export interface ScanFindings {
  /** MIME safety symbols (MIME_TOO_DEEP, MIME_TOO_MANY_PARTS, FROM_COUNT, MIME_PARSE_ERROR). */
  mime: Symbol[];
  /** undefined when no virus scanner is configured. */
  virus?: VirusScanResult & { engine: string };
  /** undefined when the message was not given to the spam engine (unsafe MIME structure or a parse error). */
  spam?: SpamCheckResult & { engine: string };
  blockedHashes: Array<BlockedHash & { filename?: string }>;
  fuzzySpam?: FuzzyMatch;
  /** Distinct identities that sent this body within the bulk window (this one included). */
  bulkSenders?: number;
}

export interface VerdictPolicy {
  spamThreshold: number;
  blockSpam: boolean;
  fuzzySpamScore: number;
  bulkScore: number;
  bulkIdentities: number;
}

export function decideVerdict(findings: ScanFindings, policy: VerdictPolicy): Verdict {
  const symbols: Symbol[] = [...findings.mime];
  if (findings.virus?.infected) {
    for (const signature of findings.virus.signatures) {
      symbols.push({ name: SCAN_SYMBOLS.virus, evidence: { signature, engine: findings.virus.engine } });
    }
  }
  for (const hash of findings.blockedHashes) {
    symbols.push({
      name: SCAN_SYMBOLS.hashBlocked,
      evidence: { sha256: hash.sha256, source: hash.source, reason: hash.reason, ...(hash.filename ? { filename: hash.filename } : {}) },
    });
  }
  let score = 0;
  if (findings.spam) {
    score += findings.spam.score;
    const gtube = findings.spam.symbols.find((item) => item.name === SCAN_SYMBOLS.gtube);
    if (gtube) symbols.push({ name: SCAN_SYMBOLS.gtube, score: gtube.score ?? 0, evidence: { engine: findings.spam.engine } });
    symbols.push({
      name: SCAN_SYMBOLS.spamScore,
      score: findings.spam.score,
      evidence: {
        engine: findings.spam.engine,
        threshold: policy.spamThreshold,
        ...(findings.spam.action ? { engineAction: findings.spam.action } : {}),
        // The engine's rules that counted, highest first; zero-score informational ones are left out.
        rules: findings.spam.symbols
          .filter((item) => (item.score ?? 0) !== 0)
          .sort((a, b) => (b.score ?? 0) - (a.score ?? 0))
          .slice(0, 20)
          .map((item) => ({ name: item.name, score: item.score ?? 0 })),
      },
    });
  }
  if (findings.fuzzySpam) {
    score += policy.fuzzySpamScore;
    symbols.push({ name: SCAN_SYMBOLS.fuzzySpam, score: policy.fuzzySpamScore, evidence: { ...findings.fuzzySpam } });
  }
  if (findings.bulkSenders !== undefined && findings.bulkSenders >= policy.bulkIdentities) {
    score += policy.bulkScore;
    symbols.push({
      name: SCAN_SYMBOLS.bulk,
      score: policy.bulkScore,
      evidence: { identities: findings.bulkSenders, threshold: policy.bulkIdentities },
    });
  }
  // GTUBE is spam whatever the engine's weights: it exists to test that spam is caught.
  const spam = score >= policy.spamThreshold || symbols.some((item) => item.name === SCAN_SYMBOLS.gtube);
  if (findings.virus?.infected) return { action: 'quarantine', kind: 'virus', symbols, score, spam };
  if (findings.blockedHashes.length > 0) return { action: 'quarantine', kind: 'blocked', symbols, score, spam };
  if (findings.mime.length > 0) return { action: 'quarantine', kind: 'malformed', symbols, score, spam };
  if (spam) return { action: policy.blockSpam ? 'quarantine' : 'deliver', kind: 'spam', symbols, score, spam };
  return { action: 'deliver', kind: 'clean', symbols, score, spam };
}

/** The verdict when an engine could not answer: the message waits and is scanned again. */
export function deferredVerdict(engine: string, error: unknown): Verdict {
  return {
    action: 'retry',
    kind: 'deferred',
    symbols: [{ name: SCAN_SYMBOLS.engineError, evidence: { engine, error: error instanceof Error ? error.message : String(error) } }],
    score: 0,
    spam: false,
  };
}

/** The symbols that caused the verdict: SPAM_SCORE is evidence always, a reason only for spam. */
export function verdictReasons(verdict: Verdict): Symbol[] {
  return verdict.symbols.filter((item) => item.name !== SCAN_SYMBOLS.spamScore || verdict.spam);
}
