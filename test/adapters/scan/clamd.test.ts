// The clamd adapter against a real clamd with a signature database made by the test.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClamdScanner, parseClamdAddress } from '../../../adapters/scan/clamd.js';
import { EICAR, startClamd, type TestDaemon } from '../../helpers/clamd.js';
import { freePort } from '../../helpers/net.js';

let clamd: TestDaemon;
let scanner: ClamdScanner;
const work = mkdtempSync(join(tmpdir(), 'outpost-clamd-test-'));

function zip(name: string, files: Array<[string, Buffer]>): Buffer {
  const dir = mkdtempSync(join(work, 'zip-'));
  for (const [file, data] of files) writeFileSync(join(dir, file), data);
  execFileSync('zip', ['-q', '-X', name, ...files.map(([file]) => file)], { cwd: dir });
  return readFileSync(join(dir, name));
}

async function mailWith(attachment: { filename: string; content: Buffer }): Promise<Buffer> {
  return new MailComposer({
    from: 'alice@example.com',
    to: 'bob@example.org',
    subject: 'the file',
    text: 'Here is the file you asked for.',
    attachments: [{ ...attachment, contentType: 'application/octet-stream', encoding: 'base64' }],
  })
    .compile()
    .build();
}

beforeAll(async () => {
  clamd = await startClamd({ maxFileSize: '1M', maxScanSize: '1M', maxRecursion: 5 });
  scanner = new ClamdScanner({ host: '127.0.0.1', port: clamd.port }, 20_000);
});
afterAll(async () => {
  await clamd?.stop();
});

describe('ClamdScanner against a real clamd', () => {
  it('finds EICAR sent as the plain stream', async () => {
    const result = await scanner.scan(Buffer.from(EICAR));
    expect(result.infected).toBe(true);
    expect(result.signatures.join(' ')).toMatch(/Outpost\.Test\.EICAR/);
  });

  it('passes an ordinary message as clean', async () => {
    const raw = await mailWith({ filename: 'notes.txt', content: Buffer.from('nothing to see here\n') });
    expect(await scanner.scan(raw)).toEqual({ infected: false, signatures: [] });
  });

  it('finds EICAR as a base64 attachment of a mail', async () => {
    const raw = await mailWith({ filename: 'eicar.com', content: Buffer.from(EICAR) });
    expect(raw.includes(EICAR)).toBe(false); // only base64 in the raw message
    const result = await scanner.scan(raw);
    expect(result.infected).toBe(true);
    expect(result.signatures.join(' ')).toMatch(/EICAR/);
  });

  it('finds EICAR zipped, and zipped twice, inside a mail', async () => {
    const once = zip('once.zip', [['eicar.com', Buffer.from(EICAR)]]);
    const twice = zip('twice.zip', [['once.zip', once]]);
    for (const archive of [once, twice]) {
      const result = await scanner.scan(await mailWith({ filename: 'archive.zip', content: archive }));
      expect(result.infected).toBe(true);
      expect(result.signatures.join(' ')).toMatch(/EICAR/);
    }
  });

  it('reports an archive over the size limits as not clean (Heuristics.Limits.Exceeded)', async () => {
    // 2 MB of incompressible data in a zip: the member is over MaxFileSize (1M).
    const archive = zip('big.zip', [['big.bin', randomBytes(2 * 1024 * 1024)]]);
    const result = await scanner.scan(await mailWith({ filename: 'big.zip', content: archive }));
    expect(result.infected).toBe(true);
    expect(result.signatures.join(' ')).toMatch(/Heuristics\.Limits\.Exceeded/);
  });

  it('throws when clamd is down, so the message is retried and not delivered unscanned', async () => {
    const nobodyListens = new ClamdScanner({ host: '127.0.0.1', port: await freePort() }, 2_000);
    await expect(nobodyListens.scan(Buffer.from('hello'))).rejects.toThrow(/clamd at 127\.0\.0\.1:\d+ could not scan/);
  });
});

describe('parseClamdAddress', () => {
  it('reads host:port and socket paths, and refuses anything else', () => {
    expect(parseClamdAddress('127.0.0.1:3310')).toEqual({ host: '127.0.0.1', port: 3310 });
    expect(parseClamdAddress('/run/clamav/clamd.ctl')).toEqual({ socket: '/run/clamav/clamd.ctl' });
    expect(() => parseClamdAddress('clamd')).toThrow(/neither host:port nor/);
  });
});
