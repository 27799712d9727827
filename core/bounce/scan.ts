// Content checks of a bounce before it changes anything or goes on to the original sender. A
// bounce is written by whoever reached the bounce listener: it gets the same engines as outgoing
// mail (MIME safety, clamd, the spam engine), but its verdict is never charged to the user it is
// addressed to: a bounce that fails is dropped, not quarantined, and no abuse is counted.
import type { Config } from '../config.js';
import type { SpamEngine, VirusScanner } from '../scan/engines.js';
import { mimeSafetySymbols } from '../scan/mime.js';
import { decideVerdict, type ScanFindings, type Verdict } from '../scan/verdict.js';

export interface BounceScanDeps {
  virusScanner?: VirusScanner;
  spamEngine: SpamEngine;
  scanning: Pick<Config['scanning'], 'maxMimeDepth' | 'maxMimeParts' | 'fuzzySpamScore' | 'bulkScore' | 'bulkIdentities'>;
  /** Score at or above which a bounce is spam (the deployment's spamThreshold). */
  spamThreshold: number;
}

export interface BounceFacts {
  bounceId: string;
  clientIp: string;
  helo: string;
  returnPath: string;
}

/**
 * The verdict on one bounce: 'deliver' lets it through; anything else is a reason to drop it.
 * Throws when an engine cannot answer: the bounce is then retried, never forwarded unscanned.
 */
export async function scanBounce(raw: Buffer, facts: BounceFacts, deps: BounceScanDeps): Promise<Verdict> {
  const mime = mimeSafetySymbols(raw, { maxDepth: deps.scanning.maxMimeDepth, maxParts: deps.scanning.maxMimeParts });
  const findings: ScanFindings = { mime, blockedHashes: [] };
  if (deps.virusScanner) findings.virus = { ...(await deps.virusScanner.scan(raw)), engine: deps.virusScanner.name };
  // A structure over the MIME caps is not handed to the spam engine (parser bomb); it is dropped anyway.
  if (!mime.some((symbol) => symbol.name !== 'FROM_COUNT')) {
    const meta = { user: '', clientIp: facts.clientIp, helo: facts.helo, mailFrom: '', rcptTo: [facts.returnPath], queueId: facts.bounceId };
    findings.spam = { ...(await deps.spamEngine.check(raw, meta)), engine: deps.spamEngine.name };
  }
  return decideVerdict(findings, {
    spamThreshold: deps.spamThreshold,
    blockSpam: true,
    fuzzySpamScore: deps.scanning.fuzzySpamScore,
    bulkScore: deps.scanning.bulkScore,
    bulkIdentities: deps.scanning.bulkIdentities,
  });
}
