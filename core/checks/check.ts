// The one contract every policy check follows, at the ingress (connect, MAIL, RCPT, DATA) and
// in the pipeline (scan). Like a Haraka hook or an rspamd symbol: a check records its evidence
// as named symbols, separately from its verdict, and `continue` lets the next check decide.
import { isStorageFull } from '../storage-full.js';

export type CheckAction = 'continue' | 'accept' | 'reject' | 'tempfail';

export interface Symbol {
  /** Stable, machine-readable name, e.g. RATE_LIMIT_HOUR, SENDER_DOMAIN_NOT_ALLOWED. */
  name: string;
  score?: number;
  evidence?: Record<string, unknown> | string;
}

export interface CheckResult {
  action: CheckAction;
  /** SMTP reply code for reject/tempfail, e.g. 550, 451. */
  code?: number;
  /** Enhanced status code, e.g. '5.7.1'. */
  enhancedCode?: string;
  /** Text the client sees; says what to do. */
  text?: string;
  symbols: Symbol[];
}

export interface Check<Ctx> {
  name: string;
  /** Per-check time limit; a timeout is a tempfail (fail closed). */
  timeoutMs?: number;
  check(ctx: Ctx): Promise<CheckResult> | CheckResult;
}

export const pass = (symbols: Symbol[] = []): CheckResult => ({ action: 'continue', symbols });

export const reject = (code: number, enhancedCode: string, text: string, symbols: Symbol[]): CheckResult => ({
  action: 'reject',
  code,
  enhancedCode,
  text,
  symbols,
});

export const tempfail = (code: number, enhancedCode: string, text: string, symbols: Symbol[]): CheckResult => ({
  action: 'tempfail',
  code,
  enhancedCode,
  text,
  symbols,
});

export interface RunOutcome {
  /** The first result that was not `continue`, or a synthetic accept. */
  final: CheckResult;
  /** The check that decided (undefined when every check continued). */
  decidedBy?: string;
  /** Every symbol recorded by every check that ran, in order. */
  symbols: Symbol[];
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Runs checks in order until one decides. An exception or a timeout in a check is a tempfail
 * (451 4.3.0): an outgoing filter fails closed. A check that resolves after its timeout is ignored.
 */
export async function runChecks<Ctx>(checks: ReadonlyArray<Check<Ctx>>, ctx: Ctx): Promise<RunOutcome> {
  const symbols: Symbol[] = [];
  for (const item of checks) {
    const result = await runOne(item, ctx);
    symbols.push(...result.symbols);
    if (result.action !== 'continue') {
      return { final: { ...result, symbols: [...symbols] }, decidedBy: item.name, symbols };
    }
  }
  return { final: { action: 'accept', symbols: [...symbols] }, symbols };
}

async function runOne<Ctx>(item: Check<Ctx>, ctx: Ctx): Promise<CheckResult> {
  const timeoutMs = item.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () =>
        resolve(
          tempfail(451, '4.3.0', 'Temporary local problem, please try again later', [
            { name: 'CHECK_TIMEOUT', evidence: { check: item.name, timeoutMs } },
          ]),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([Promise.resolve().then(() => item.check(ctx)), timeout]);
  } catch (error: unknown) {
    if (isStorageFull(error)) {
      return tempfail(452, '4.3.1', 'Insufficient system storage, please try again later', [
        { name: 'STORAGE_FULL', evidence: { check: item.name, error: error instanceof Error ? error.message : String(error) } },
      ]);
    }
    return tempfail(451, '4.3.0', 'Temporary local problem, please try again later', [
      { name: 'CHECK_ERROR', evidence: { check: item.name, error: error instanceof Error ? error.message : String(error) } },
    ]);
  } finally {
    clearTimeout(timer);
  }
}
