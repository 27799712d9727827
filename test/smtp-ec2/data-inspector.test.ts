// The DATA inspector finds the first defect of a message in byte order — a NUL, a bare CR or LF
// (the raw material of SMTP smuggling), a line too long, a message too big — however the bytes
// are split into chunks. It jumps between CR and LF with Buffer.indexOf; the byte-by-byte reading
// it replaced is kept here as the reference, and both are given the same random messages in
// random chunks: the same defect at the same offset, or none, every time.
import { describe, expect, it } from 'vitest';
import { DataInspector, type DataDefect } from '../../smtp-ec2/data-inspector.js';
import { seededRandom as random } from '../helpers/random.js';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

/** The byte-by-byte reading (the inspector before it used indexOf), over the whole message. */
function reference(message: Buffer, maxLineLength: number): { defect?: DataDefect; at?: number } {
  let previous = -1;
  let lineLength = 0;
  for (let i = 0; i < message.length; i++) {
    const byte = message[i] ?? -1;
    if (byte === NUL) return { defect: 'nul-byte', at: i };
    if (byte === LF) {
      if (previous !== CR) return { defect: 'bare-line-ending', at: i };
      lineLength = 0;
    } else {
      if (previous === CR) return { defect: 'bare-line-ending', at: i };
      if (byte !== CR && ++lineLength > maxLineLength) return { defect: 'line-too-long', at: i };
    }
    previous = byte;
  }
  // The end: a message may not end in a lone CR.
  return previous === CR ? { defect: 'bare-line-ending', at: message.length } : {};
}

/** Mostly well-formed lines, with now and then a stray CR, LF or NUL, or a long line. */
function message(next: () => number): Buffer {
  const bytes: number[] = [];
  const lines = 1 + Math.floor(next() * 12);
  for (let line = 0; line < lines; line++) {
    const length = next() < 0.1 ? 20 + Math.floor(next() * 30) : Math.floor(next() * 12);
    for (let i = 0; i < length; i++) {
      const roll = next();
      bytes.push(roll < 0.01 ? NUL : roll < 0.025 ? CR : roll < 0.04 ? LF : 0x61 + Math.floor(next() * 26));
    }
    if (next() < 0.97) bytes.push(CR, LF);
  }
  return Buffer.from(bytes);
}

/** The message in chunks of random sizes (empty ones included), as a socket may deliver it. */
function chunks(whole: Buffer, next: () => number): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < whole.length) {
    const size = Math.floor(next() * 9);
    parts.push(whole.subarray(at, at + size));
    at += size;
  }
  return parts;
}

function inspect(parts: Buffer[], maxLineLength: number, maxBytes = 1_000_000): DataInspector {
  const inspector = new DataInspector(maxBytes, maxLineLength);
  for (const part of parts) inspector.inspectChunk(part);
  inspector.inspectEnd();
  return inspector;
}

describe('DataInspector', () => {
  it('finds the same first defect at the same offset as the byte-by-byte reading, over 20,000 random messages in random chunks', () => {
    let defects = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const next = random(seed);
      const whole = message(next);
      const maxLineLength = 5 + Math.floor(next() * 30);
      const expected = reference(whole, maxLineLength);
      const inspector = inspect(chunks(whole, next), maxLineLength);
      const found = { defect: inspector.defect, at: inspector.defectAt };
      if (found.defect !== expected.defect || found.at !== expected.at) {
        expect({ seed, ...found }).toEqual({ seed, ...expected });
      }
      if (expected.defect) defects += 1;
    }
    // Both kinds of message were tried: with a defect and without.
    expect(defects).toBeGreaterThan(2_000);
    expect(defects).toBeLessThan(18_000);
  });

  it('names each defect where it is, across chunk boundaries', () => {
    expect(inspect([Buffer.from('ab\r'), Buffer.from('\ncd\r\n')], 10).defect).toBeUndefined();
    const bareCr = inspect([Buffer.from('ab\r'), Buffer.from('x\r\n')], 10);
    expect([bareCr.defect, bareCr.defectAt]).toEqual(['bare-line-ending', 3]);
    const bareLf = inspect([Buffer.from('ab'), Buffer.from('\n.\n')], 10);
    expect([bareLf.defect, bareLf.defectAt]).toEqual(['bare-line-ending', 2]);
    const crCr = inspect([Buffer.from('a\r\r\n')], 10);
    expect([crCr.defect, crCr.defectAt]).toEqual(['bare-line-ending', 2]);
    const nul = inspect([Buffer.from('ab\r\n'), Buffer.from('\r\n\x00.\r\n')], 10);
    expect([nul.defect, nul.defectAt]).toEqual(['nul-byte', 6]);
    // A NUL after an earlier defect is not the one reported.
    const first = inspect([Buffer.from('a\nb\x00')], 10);
    expect([first.defect, first.defectAt]).toEqual(['bare-line-ending', 1]);
    const long = inspect([Buffer.from('abc'), Buffer.from('defgh\r\n')], 5);
    expect([long.defect, long.defectAt]).toEqual(['line-too-long', 5]);
    expect(inspect([Buffer.from('abcde\r\n'), Buffer.from('fghij\r\n')], 5).defect).toBeUndefined();
    const loneCr = inspect([Buffer.from('ab\r\n'), Buffer.from('cd\r')], 10);
    expect([loneCr.defect, loneCr.defectAt]).toEqual(['bare-line-ending', 7]);
  });

  it('stops passing a message on once it is known to be refused, and counts every byte', () => {
    const inspector = new DataInspector(1_000, 10);
    expect(inspector.inspectChunk(Buffer.from('ok\r\n'))).toBe(true);
    expect(inspector.inspectChunk(Buffer.from('bare\nline\r\n'))).toBe(false);
    expect(inspector.inspectChunk(Buffer.from('more\r\n'))).toBe(false);
    expect(inspector.bytes).toBe(21);
    const big = new DataInspector(8, 100);
    expect(big.inspectChunk(Buffer.from('1234\r\n'))).toBe(true);
    expect(big.inspectChunk(Buffer.from('5678\r\n'))).toBe(false);
    expect([big.defect, big.defectAt]).toEqual(['too-big', 12]);
  });
});
