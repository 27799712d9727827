// The scanning engines behind ports: a virus scanner (clamd) and a spam engine (rspamd, spamd or
// the built-in rules). An engine that cannot answer throws: the scan is then retried later, and
// the message is never delivered unscanned.
import type { ParsedMail } from 'mailparser';
import type { Symbol } from '../checks/check.js';

export interface VirusScanResult {
  /** true only when the engine found something; "limit exceeded" alerts count as infected. */
  infected: boolean;
  /** Signature names as the engine reports them, e.g. Eicar-Signature, Heuristics.Limits.Exceeded.MaxFileSize. */
  signatures: string[];
}

export interface VirusScanner {
  readonly name: string;
  /** Scans the raw message; throws when the engine is down, times out or reports an error. */
  scan(raw: Buffer): Promise<VirusScanResult>;
}

/** What the spam engine needs to apply outbound (authenticated-user) rules. */
export interface SpamCheckMeta {
  /** The authenticated user (AUTH name) or the identity of an IP user. */
  user: string;
  clientIp: string;
  helo: string;
  mailFrom: string;
  rcptTo: string[];
  queueId: string;
}

export interface SpamCheckResult {
  score: number;
  /** The engine's rules that fired, with their scores. */
  symbols: Symbol[];
  /** The engine's own recommendation (rspamd action), for the evidence only. */
  action?: string;
}

export interface SpamEngine {
  readonly name: string;
  /**
   * Throws when the engine cannot give an answer. `parsed` is the message as the scan already
   * parsed it (mailparser), for an engine that reads it in this process (the built-in rules)
   * instead of parsing it again; the others send `raw`.
   */
  check(raw: Buffer, meta: SpamCheckMeta, parsed?: ParsedMail): Promise<SpamCheckResult>;
}

/** The GTUBE test string (SpamAssassin's and rspamd's spam test pattern). */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

/** Rejects with a message naming the engine when `work` does not settle within `ms`. */
export async function withTimeout<T>(engine: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${engine} gave no answer within ${ms} ms; check that it runs and is reachable`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
