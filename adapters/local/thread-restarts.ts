// When a worker thread of the relay that died may be started again (counter-thread.ts,
// acceptance-thread.ts start theirs at the next call or batch). A worker that dies at once every
// time — its database cannot be opened, a module fails to load — would otherwise be started again
// for every call: a new thread, a module graph loaded through tsx and a database opened, over and
// over, taking a core from the SMTP sessions while every call fails anyway. So the first death
// restarts at the next call (a worker that served calls and then died is most likely a one-off),
// and each further death before a worker has answered anything doubles the wait, up to a ceiling.
// Calls made meanwhile fail at once: their sessions answer 451 and the clients retry.
import { performance } from 'node:perf_hooks';

export const FIRST_RESTART_DELAY_MS = 250;
export const MAX_RESTART_DELAY_MS = 10_000;

export class RestartBackoff {
  /** Deaths in a row with no answer from a worker in between. */
  private deaths = 0;
  private notBefore = 0;

  constructor(
    private readonly firstDelayMs = FIRST_RESTART_DELAY_MS,
    private readonly maxDelayMs = MAX_RESTART_DELAY_MS,
    // Monotonic: the relay's clock may be moved (tests) and the wall clock may jump.
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A worker answered: it works, and the next death restarts at once again. */
  served(): void {
    this.deaths = 0;
    this.notBefore = 0;
  }

  /** A worker died: returns how long the next one must wait before it starts (0: at the next call). */
  died(): number {
    this.deaths += 1;
    const delay = this.deaths === 1 ? 0 : Math.min(this.maxDelayMs, this.firstDelayMs * 2 ** (this.deaths - 2));
    this.notBefore = this.now() + delay;
    return delay;
  }

  /** Milliseconds until a worker may be started again; 0 when it may be now. */
  waitMs(): number {
    return Math.max(0, Math.ceil(this.notBefore - this.now()));
  }
}

/**
 * How a worker thread's client closes: resolves once `register`'s signal is called (the work in
 * hand is done) or after `timeoutMs`, whichever comes first.
 */
export function untilDrained(timeoutMs: number, register: (signal: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    register(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** queue.threadWatchdogSeconds' default: how long a worker thread may be silent with work in hand. */
export const DEFAULT_WATCHDOG_MS = 60_000;

/**
 * The watchdog of one worker thread: a thread whose event loop is blocked (a loop that never ends
 * on a crafted message, a regular expression gone catastrophic, a native call that never returns)
 * does not die, it only stops answering. `watch` when work is handed over (it keeps the time of a
 * watch already running), `heard` at each answer or heartbeat, `stop` when nothing is in hand; if
 * `timeoutMs` pass while watching with nothing heard, `onSilent` is called once, with how long the
 * thread was silent. A `timeoutMs` of 0 never calls it (queue.threadWatchdogSeconds: 0).
 */
export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private heardAt = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly onSilent: (silentMs: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  watch(): void {
    if (this.timeoutMs <= 0 || this.timer) return;
    this.heardAt = this.now();
    this.arm(this.timeoutMs);
  }

  /** Cheap (no timer is touched): called for every answer of a busy thread. */
  heard(): void {
    this.heardAt = this.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(inMs: number): void {
    // Unref'd: a watchdog alone never keeps the process alive.
    this.timer = setTimeout(() => this.check(), inMs).unref();
  }

  private check(): void {
    const silentMs = this.now() - this.heardAt;
    if (silentMs < this.timeoutMs) return this.arm(Math.ceil(this.timeoutMs - silentMs));
    this.timer = undefined;
    this.onSilent(silentMs);
  }
}
