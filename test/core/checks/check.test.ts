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

  describe('timers', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('sets none for checks that answer at once, and clears the one of each asynchronous check when it answers', async () => {
      vi.useFakeTimers();
      const continuing: Check<unknown> = { name: 'continuing', check: () => ({ action: 'continue', symbols: [{ name: 'SEEN' }] }) };
      const outcome = runChecks([continuing, continuing, accepting], {});
      expect(vi.getTimerCount()).toBe(0);
      expect((await outcome).symbols).toEqual([{ name: 'SEEN' }, { name: 'SEEN' }]);
      const asynchronous: Check<unknown> = { name: 'asynchronous', check: async () => ({ action: 'continue', symbols: [] }) };
      const later = runChecks([asynchronous, asynchronous, accepting], {});
      expect(vi.getTimerCount()).toBe(1);
      expect((await later).final.action).toBe('accept');
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});
