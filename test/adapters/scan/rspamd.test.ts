// The rspamd adapter against a real rspamd (Debian's rules, offline configuration).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RspamdEngine } from '../../../adapters/scan/rspamd.js';
import type { TestDaemon } from '../../helpers/clamd.js';
import { freePort } from '../../helpers/net.js';
import { startRspamd } from '../../helpers/rspamd.js';
import { gtubeMessage, meta, ordinaryMessage, spammyMessage } from './spam-messages.js';

let rspamd: TestDaemon & { url: string };
let engine: RspamdEngine;
const THRESHOLD = 6;

beforeAll(async () => {
  rspamd = await startRspamd();
  engine = new RspamdEngine(rspamd.url, 30_000);
});
afterAll(async () => {
  await rspamd?.stop();
});

describe('RspamdEngine against a real rspamd', () => {
  it('catches GTUBE', async () => {
    const result = await engine.check(gtubeMessage(), meta);
    expect(result.symbols.map((item) => item.name)).toContain('GTUBE');
    expect(result.action).toBe('reject');
  });

  it('scores an advance-fee spam over the threshold', async () => {
    const result = await engine.check(spammyMessage(), meta);
    expect(result.score).toBeGreaterThanOrEqual(THRESHOLD);
    expect(result.symbols.map((item) => item.name)).toContain('SUBJ_ALL_CAPS');
  });

  it('lets an ordinary message pass under the threshold', async () => {
    const result = await engine.check(ordinaryMessage(), meta);
    expect(result.score).toBeLessThan(THRESHOLD);
  });

  it('throws when rspamd is down', async () => {
    const down = new RspamdEngine(`http://127.0.0.1:${await freePort()}`, 2_000);
    await expect(down.check(ordinaryMessage(), meta)).rejects.toThrow(/rspamd at http:\/\/127\.0\.0\.1:\d+ is unreachable/);
  });
});

describe('RspamdEngine request', () => {
  type Seen = { headers: IncomingHttpHeaders; raw: string[]; path: string | undefined };
  const withFakeRspamd = async (work: (url: string) => Promise<void>): Promise<Seen | undefined> => {
    let seen: Seen | undefined;
    const server = createServer((req, res) => {
      seen = { headers: req.headers, raw: req.rawHeaders, path: req.url };
      req.resume();
      req.on('end', () => res.end(JSON.stringify({ score: 1.5, action: 'no action', symbols: { A: { name: 'A', score: 1.5 } } })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      await work(`http://127.0.0.1:${port}`);
    } finally {
      server.close();
    }
    return seen;
  };

  it('sends non-ASCII session facts as UTF-8 and drops control characters, instead of failing the scan', async () => {
    const seen = await withFakeRspamd(async (url) => {
      const result = await new RspamdEngine(url).check(ordinaryMessage(), {
        ...meta,
        helo: 'posteingang-例え.example\r\nX-Injected: 1',
        mailFrom: 'jörg@例え.jp',
        rcptTo: ['用户@例子.cn'],
      });
      expect(result.score).toBe(1.5);
    });
    const utf8 = (value: string | string[] | undefined): string => Buffer.from(String(value), 'latin1').toString('utf8');
    expect(utf8(seen?.headers.helo)).toBe('posteingang-例え.exampleX-Injected: 1');
    expect(utf8(seen?.headers.from)).toBe('jörg@例え.jp');
    expect(utf8(seen?.headers.rcpt)).toBe('用户@例子.cn');
    expect(seen?.headers['x-injected']).toBeUndefined();
  });

  it('passes the session facts as headers, one Rcpt header line per recipient', async () => {
    const seen = await withFakeRspamd(async (url) => {
      const result = await new RspamdEngine(url).check(ordinaryMessage(), { ...meta, rcptTo: ['b@example.org', 'c@example.org'] });
      expect(result).toEqual({ score: 1.5, action: 'no action', symbols: [{ name: 'A', score: 1.5 }] });
    });
    expect(seen?.path).toBe('/checkv2');
    expect(seen?.headers.user).toBe('alice@example.com');
    expect(seen?.headers.ip).toBe('192.0.2.10');
    expect(seen?.headers.helo).toBe('laptop.example.com');
    expect(seen?.headers.from).toBe('alice@example.com');
    expect(seen?.headers['queue-id']).toBe('Q1234');
    const rcptLines = [];
    for (let i = 0; i < (seen?.raw.length ?? 0); i += 2) if (seen?.raw[i]?.toLowerCase() === 'rcpt') rcptLines.push(seen.raw[i + 1]);
    expect(rcptLines).toEqual(['b@example.org', 'c@example.org']);
  });
});
