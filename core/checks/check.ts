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
 * A check that answers at once (not a promise) costs no timer and no promise, and asynchronous
 * checks share one timer per time limit (Deadlines): the ingress runs a dozen checks for every
 * message, and their timers and promises were a few percent of its thread.
 */
export async function runChecks<Ctx>(checks: ReadonlyArray<Check<Ctx>>, ctx: Ctx): Promise<RunOutcome> {
  return runChecksNow(checks, ctx);
}

/**
 * runChecks, answering at once when every check did: the ingress's checks mostly read from memory,
 * and a promise for each phase of each message was a measurable part of the relay's thread. Once a
 * check answers with a promise, the rest run after it, as runChecks does. Never throws: a check's
 * throw or rejection is its tempfail.
 */
export function runChecksNow<Ctx>(checks: ReadonlyArray<Check<Ctx>>, ctx: Ctx): RunOutcome | Promise<RunOutcome> {
  return runFrom(checks, ctx, 0, []);
}

/** The checks from the `from`th on, `symbols` holding those of the checks before. */
function runFrom<Ctx>(checks: ReadonlyArray<Check<Ctx>>, ctx: Ctx, from: number, symbols: Symbol[]): RunOutcome | Promise<RunOutcome> {
  for (let i = from; i < checks.length; i++) {
    const item = checks[i] as Check<Ctx>;
    const outcome = runOne(item, ctx);
    if (outcome instanceof Promise) return outcome.then((result) => decide(item, result, symbols) ?? runFrom(checks, ctx, i + 1, symbols));
    const decided = decide(item, outcome, symbols);
    if (decided) return decided;
  }
  return { final: { action: 'accept', symbols: [...symbols] }, symbols };
}

/** Adds the check's symbols; the outcome when it decided, undefined when it continued. */
function decide<Ctx>(item: Check<Ctx>, result: CheckResult, symbols: Symbol[]): RunOutcome | undefined {
  symbols.push(...result.symbols);
  if (result.action === 'continue') return undefined;
  return { final: { ...result, symbols: [...symbols] }, decidedBy: item.name, symbols };
}

function runOne<Ctx>(item: Check<Ctx>, ctx: Ctx): CheckResult | Promise<CheckResult> {
  let outcome: Promise<CheckResult> | CheckResult;
  try {
    outcome = item.check(ctx);
  } catch (error: unknown) {
    return failed(item, error);
  }
  if (!isThenable(outcome)) return outcome;
  // A thenable that is not a promise is adopted first: its then() may throw, which fails the check.
  const pending = outcome instanceof Promise ? outcome : Promise.resolve(outcome);
  const timeoutMs = item.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise<CheckResult>((resolve) => {
    const watched = deadlinesOf(timeoutMs).watch(() =>
      resolve(
        tempfail(451, '4.3.0', 'Temporary local problem, please try again later', [
          { name: 'CHECK_TIMEOUT', evidence: { check: item.name, timeoutMs } },
        ]),
      ),
    );
    // Whichever comes first settles the promise; the later one is ignored.
    pending.then(
      (result) => {
        watched.done();
        resolve(result);
      },
      (error: unknown) => {
        watched.done();
        resolve(failed(item, error));
      },
    );
  });
}

/** An asynchronous check in progress, as its time limit's Deadlines keep it. */
interface Watched {
  readonly deadline: number;
  settled: boolean;
  readonly expire: () => void;
  done(): void;
}

/**
 * The deadlines of the asynchronous checks in progress that share one time limit. Each started
 * later than the one before, so they end in the order they began: one timer, for the oldest still
 * in progress, serves them all, instead of a timer set and cleared for each check (about ten a
 * message at the ingress, 2 % of the relay's thread). The timer holds the process open only while
 * a check is in progress (as each check's own timer did); with none, it stays set, unreferenced,
 * until its time comes.
 */
class Deadlines {
  private readonly watched: Watched[] = [];
  /** The index of the oldest entry not yet dropped. */
  private first = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {}

  watch(expire: () => void): Watched {
    const entry: Watched = {
      deadline: performance.now() + this.ms,
      settled: false,
      expire,
      done: () => {
        entry.settled = true;
        this.dropSettled();
      },
    };
    this.watched.push(entry);
    if (this.timer === undefined) this.arm(this.ms);
    else this.timer.ref();
    return entry;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.expireDue(), ms);
  }

  /** Times out every check in progress whose deadline has come, then waits for the next. */
  private expireDue(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.first < this.watched.length) {
      const entry = this.watched[this.first] as Watched;
      if (!entry.settled) {
        if (entry.deadline > now) break;
        entry.settled = true;
        entry.expire();
      }
      this.first += 1;
    }
    this.compact();
    const next = this.watched[this.first];
    if (next !== undefined) this.arm(Math.max(1, next.deadline - now));
  }

  /** Drops the settled entries at the front (checks mostly end in the order they began). */
  private dropSettled(): void {
    while (this.first < this.watched.length && (this.watched[this.first] as Watched).settled) this.first += 1;
    this.compact();
  }

  private compact(): void {
    if (this.first === this.watched.length) {
      this.watched.length = 0;
      this.first = 0;
      this.timer?.unref();
    } else if (this.first >= 1024 && this.first * 2 >= this.watched.length) {
      this.watched.splice(0, this.first);
      this.first = 0;
    }
  }
}

const deadlines = new Map<number, Deadlines>();

function deadlinesOf(ms: number): Deadlines {
  let kept = deadlines.get(ms);
  if (kept === undefined) {
    kept = new Deadlines(ms);
    deadlines.set(ms, kept);
  }
  return kept;
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** What a check that threw or rejected answers: 452 when the disk is full, else 451 (fail closed). */
function failed<Ctx>(item: Check<Ctx>, error: unknown): CheckResult {
  if (isStorageFull(error)) {
    return tempfail(452, '4.3.1', 'Insufficient system storage, please try again later', [
      { name: 'STORAGE_FULL', evidence: { check: item.name, error: error instanceof Error ? error.message : String(error) } },
    ]);
  }
  return tempfail(451, '4.3.0', 'Temporary local problem, please try again later', [
    { name: 'CHECK_ERROR', evidence: { check: item.name, error: error instanceof Error ? error.message : String(error) } },
  ]);
}
