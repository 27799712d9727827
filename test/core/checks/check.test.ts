// runChecks fails closed: a check that throws or outlasts its timeout is a tempfail, never an
// accept; a full disk behind a check is told apart (452 4.3.1), so that the client's retry and
// the operator's log both say what happened.
import { describe, expect, it } from 'vitest';
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
});
