// The watchdog's timing (thread-restarts.ts), on a fake clock: it fires once, when work has been in
// hand for its time with nothing heard; an answer or heartbeat puts it off, a stop ends it, 0
// turns it off, and a thread not yet heard from is given the startup allowance. The worker clients' use of it is tested with real threads that hang for real
// (counter-thread-faults, acceptance-thread-faults, pipeline-thread-faults, e2e worker-thread-faults).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Watchdog } from '../../../adapters/local/thread-restarts.js';

describe('Watchdog', () => {
  let silences: number[];
  /** A watchdog with no startup allowance unless `startupMs` is given. */
  const watchdog = (timeoutMs: number, startupMs = 0): Watchdog => new Watchdog(timeoutMs, (silentMs) => silences.push(silentMs), () => Date.now(), startupMs);

  beforeEach(() => {
    vi.useFakeTimers();
    silences = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once, when the time has passed since the watch began with nothing heard', () => {
    const dog = watchdog(1000);
    dog.watch();
    vi.advanceTimersByTime(999);
    expect(silences).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(silences).toEqual([1000]);
    vi.advanceTimersByTime(10_000);
    expect(silences).toEqual([1000]);
  });

  it('is put off by what it hears, and a watch already running keeps its time', () => {
    const dog = watchdog(1000);
    dog.watch();
    vi.advanceTimersByTime(600);
    dog.heard();
    dog.watch();
    vi.advanceTimersByTime(600);
    expect(silences).toEqual([]);
    vi.advanceTimersByTime(400);
    expect(silences).toEqual([1000]);
  });

  it('does not fire once stopped, and watches afresh after a stop', () => {
    const dog = watchdog(1000);
    dog.watch();
    vi.advanceTimersByTime(900);
    dog.stop();
    vi.advanceTimersByTime(5_000);
    expect(silences).toEqual([]);
    dog.watch();
    vi.advanceTimersByTime(1000);
    expect(silences).toEqual([1000]);
  });

  it('never fires with a time of 0 (queue.threadWatchdogSeconds: 0)', () => {
    const dog = watchdog(0);
    dog.watch();
    vi.advanceTimersByTime(60_000);
    expect(silences).toEqual([]);
  });

  it('gives a thread not yet heard from the startup allowance, and the watchdog time once it has been heard from', () => {
    const dog = watchdog(1000, 5000);
    dog.watch();
    vi.advanceTimersByTime(4999);
    expect(silences).toEqual([]);
    dog.heard();
    vi.advanceTimersByTime(999);
    expect(silences).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(silences).toEqual([1000]);
    // Silent from the start: fires at the allowance.
    const fresh = watchdog(1000, 5000);
    fresh.watch();
    vi.advanceTimersByTime(5000);
    expect(silences).toEqual([1000, 5000]);
  });

  it('is due after the watchdog time once the thread is first heard from during the startup allowance', () => {
    const dog = watchdog(1000, 30_000);
    dog.watch();
    vi.advanceTimersByTime(2000);
    dog.heard();
    vi.advanceTimersByTime(1000);
    expect(silences).toEqual([1000]);
  });
});
