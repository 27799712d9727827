// The spamd adapter against a real SpamAssassin spamd with the rules Debian ships.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpamdEngine, parseReport } from '../../../adapters/scan/spamd.js';
import { freePort } from '../../helpers/net.js';
import { startSpamd } from '../../helpers/spamd.js';
import type { TestDaemon } from '../../helpers/clamd.js';
import { gtubeMessage, meta, ordinaryMessage, spammyMessage } from './spam-messages.js';

let spamd: TestDaemon;
let engine: SpamdEngine;
const THRESHOLD = 6;

beforeAll(async () => {
  spamd = await startSpamd();
  engine = SpamdEngine.fromAddress(`127.0.0.1:${spamd.port}`, 30_000);
});
afterAll(async () => {
  await spamd?.stop();
});

describe('SpamdEngine against a real spamd', () => {
  it('catches GTUBE and names the rule', async () => {
    const result = await engine.check(gtubeMessage(), meta);
    expect(result.score).toBeGreaterThan(100);
    expect(result.symbols.map((item) => item.name)).toContain('GTUBE');
    expect(result.symbols.find((item) => item.name === 'GTUBE')?.score).toBeGreaterThan(100);
  });

  it('scores an advance-fee spam over the threshold', async () => {
    const result = await engine.check(spammyMessage(), meta);
    expect(result.score).toBeGreaterThanOrEqual(THRESHOLD);
    expect(result.symbols.length).toBeGreaterThan(2);
  });

  it('lets an ordinary message pass under the threshold', async () => {
    const result = await engine.check(ordinaryMessage(), meta);
    expect(result.score).toBeLessThan(THRESHOLD);
    expect(result.symbols.map((item) => item.name)).not.toContain('GTUBE');
  });

  it('throws when spamd is down', async () => {
    const down = new SpamdEngine('127.0.0.1', await freePort(), 2_000);
    await expect(down.check(ordinaryMessage(), meta)).rejects.toThrow(/spamd at 127\.0\.0\.1:\d+ is unreachable/);
  });
});

describe('parseReport', () => {
  it('refuses a reply that is not the spamd protocol or carries an error code', () => {
    expect(() => parseReport('HTTP/1.1 200 OK\r\n\r\n', 'x')).toThrow(/not the spamd protocol/);
    expect(() => parseReport('SPAMD/1.1 76 Bad header line\r\n\r\n', 'x')).toThrow(/failed: 76/);
  });
});
