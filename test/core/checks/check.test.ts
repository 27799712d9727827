// runChecks fails closed: a check that throws or outlasts its timeout is a tempfail, never an
// accept; a full disk behind a check is told apart (452 4.3.1), so that the client's retry and
// the operator's log both say what happened.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runChecks, type Check } from '../../../core/checks/check.js';

const accepting: Check<unknown> = { name: 'accepting', check: () => ({ action: 'accept', symbols: [] }) };
const throwing = (error: unknown): Check<unknown> => ({
  name: 'throwing',
  check: () => {
    throw error;
  },
});

describe('runChecks', () => {
  it('answers 451 4.3.0 when a check throws, and does not run the checks after it', async () => {
    const { final, decidedBy } = await runChecks([throwing(new Error('engine down')), accepting], {});
    expect(decidedBy).toBe('throwing');
    expect(final).toMatchObject({ action: 'tempfail', code: 451, enhancedCode: '4.3.0' });
    expect(final.symbols).toEqual([{ name: 'CHECK_ERROR', evidence: { check: 'throwing', error: 'engine down' } }]);
  });

  for (const code of ['SQLITE_FULL', 'ENOSPC', 'EDQUOT']) {
    it(`answers 452 4.3.1 (mail system full) when a check's store reports ${code}`, async () => {
      const full = Object.assign(new Error('database or disk is full'), { code });
      const { final } = await runChecks([throwing(full), accepting], {});
      expect(final).toMatchObject({ action: 'tempfail', code: 452, enhancedCode: '4.3.1' });
      expect(final.symbols).toEqual([{ name: 'STORAGE_FULL', evidence: { check: 'throwing', error: 'database or disk is full' } }]);
    });
  }

  it('answers 451 4.3.0 for other storage errors (a busy database is not a full one)', async () => {
    const { final } = await runChecks([throwing(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }))], {});
    expect(final).toMatchObject({ code: 451, enhancedCode: '4.3.0' });
  });

  it('answers 451 4.3.0 when a check outlasts its timeout', async () => {
    const slow: Check<unknown> = { name: 'slow', timeoutMs: 20, check: () => new Promise(() => undefined) };
    const { final } = await runChecks([slow, accepting], {});
    expect(final).toMatchObject({ action: 'tempfail', code: 451, enhancedCode: '4.3.0' });
    expect(final.symbols[0]?.name).toBe('CHECK_TIMEOUT');
  });

  it('answers 451 4.3.0 when an asynchronous check rejects, and 452 4.3.1 when it rejects with a full disk', async () => {
    const rejecting = (error: Error): Check<unknown> => ({ name: 'rejecting', check: async () => Promise.reject(error) });
    const failed = await runChecks([rejecting(new Error('engine down')), accepting], {});
    expect(failed).toMatchObject({ decidedBy: 'rejecting', final: { action: 'tempfail', code: 451, enhancedCode: '4.3.0' } });
    expect(failed.final.symbols).toEqual([{ name: 'CHECK_ERROR', evidence: { check: 'rejecting', error: 'engine down' } }]);
    const full = await runChecks([rejecting(Object.assign(new Error('disk full'), { code: 'ENOSPC' }))], {});
    expect(full.final).toMatchObject({ code: 452, enhancedCode: '4.3.1' });
  });

  it('answers 451 4.3.0 when a check hands back a thenable that throws (a misbehaving adapter)', async () => {
    const broken: Check<unknown> = {
      name: 'broken',
      check: () =>
        ({
          then() {
            throw new Error('not a real promise');
          },
        }) as unknown as Promise<{ action: 'accept'; symbols: [] }>,
    };
    const { final, decidedBy } = await runChecks([broken, accepting], {});
    expect(decidedBy).toBe('broken');
    expect(final).toMatchObject({ action: 'tempfail', code: 451, enhancedCode: '4.3.0' });
    expect(final.symbols).toEqual([{ name: 'CHECK_ERROR', evidence: { check: 'broken', error: 'not a real promise' } }]);
  });

  it('ignores a check that answers after its timeout', async () => {
    let answer: (result: { action: 'accept'; symbols: [] }) => void = () => undefined;
    const late: Check<unknown> = { name: 'late', timeoutMs: 10, check: () => new Promise((resolve) => (answer = resolve)) };
    const { final } = await runChecks([late], {});
    expect(final.symbols[0]?.name).toBe('CHECK_TIMEOUT');
    answer({ action: 'accept', symbols: [] });
    await new Promise((resolve) => setImmediate(resolve));
    expect(final).toMatchObject({ action: 'tempfail', code: 451 });
  });

  it('holds the process open while an asynchronous check is in progress, and not once none is', async () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timeouts();
    const answers: Array<() => void> = [];
    const waiting: Check<unknown> = { name: 'waiting', timeoutMs: 4321, check: () => new Promise((resolve) => answers.push(() => resolve({ action: 'accept', symbols: [] }))) };
    const first = runChecks([waiting], {});
    expect(timeouts()).toBe(before + 1);
    answers[0]?.();
    await first;
    expect(timeouts()).toBe(before);
    // The shared timer is still set (its time has not come): a new check makes it hold the process again.
    const second = runChecks([waiting], {});
    expect(timeouts()).toBe(before + 1);
    answers[1]?.();
    await second;
    expect(timeouts()).toBe(before);
  });

  describe('timers', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('sets none for checks that answer at once, and one for all the asynchronous checks in progress', async () => {
      vi.useFakeTimers();
      const continuing: Check<unknown> = { name: 'continuing', check: () => ({ action: 'continue', symbols: [{ name: 'SEEN' }] }) };
      const outcome = runChecks([continuing, continuing, accepting], {});
      expect(vi.getTimerCount()).toBe(0);
      expect((await outcome).symbols).toEqual([{ name: 'SEEN' }, { name: 'SEEN' }]);
      // Twenty sessions' checks in progress at once, each waiting for its store: one timer between
      // them (a time limit of their own: the timers are shared by limit, module-wide).
      const answers: Array<() => void> = [];
      const waiting: Check<unknown> = { name: 'waiting', timeoutMs: 7000, check: () => new Promise((resolve) => answers.push(() => resolve({ action: 'continue', symbols: [] }))) };
      const runs = Array.from({ length: 20 }, () => runChecks([waiting, accepting], {}));
      expect(answers).toHaveLength(20);
      expect(vi.getTimerCount()).toBe(1);
      for (const answer of answers) answer();
      for (const run of runs) expect((await run).final.action).toBe('accept');
      // It stays set until the first deadline, then goes: nothing is in progress.
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(7000);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('times each asynchronous check out at its own deadline, those that answered in between left alone', async () => {
      vi.useFakeTimers();
      const answers: Array<() => void> = [];
      const waiting: Check<unknown> = { name: 'waiting', timeoutMs: 1000, check: () => new Promise((resolve) => answers.push(() => resolve({ action: 'accept', symbols: [] }))) };
      const finals: string[] = [];
      const start = (label: string) => void runChecks([waiting], {}).then(({ final }) => finals.push(`${label} ${final.action}${final.symbols[0] ? ` ${final.symbols[0].name}` : ''}`));
      start('first'); // times out at 1000
      await vi.advanceTimersByTimeAsync(300);
      start('second'); // answers at 500
      await vi.advanceTimersByTimeAsync(300);
      start('third'); // times out at 1600
      await vi.advanceTimersByTimeAsync(200);
      answers[1]?.();
      await vi.advanceTimersByTimeAsync(0);
      expect(finals).toEqual(['second accept']);
      await vi.advanceTimersByTimeAsync(199); // 999
      expect(finals).toEqual(['second accept']);
      await vi.advanceTimersByTimeAsync(1); // 1000
      expect(finals).toEqual(['second accept', 'first tempfail CHECK_TIMEOUT']);
      await vi.advanceTimersByTimeAsync(599); // 1599
      expect(finals).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1); // 1600
      expect(finals).toEqual(['second accept', 'first tempfail CHECK_TIMEOUT', 'third tempfail CHECK_TIMEOUT']);
      expect(vi.getTimerCount()).toBe(0);
      // A check that answers after its timeout changes nothing.
      answers[0]?.();
      await vi.advanceTimersByTimeAsync(0);
      expect(finals).toHaveLength(3);
    });
  });
});
