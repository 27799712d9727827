// MIME safety: depth and part caps, exactly one From header.
import { describe, expect, it } from 'vitest';
import { countFromHeaders, mimeSafetySymbols, mimeStructure } from '../../../core/scan/mime.js';

function nested(depth: number): string {
  let body = 'Content-Type: text/plain\r\n\r\nhello\r\n';
  for (let level = depth; level > 0; level--) {
    const boundary = `b${level}`;
    body = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\n${body}--${boundary}--\r\n`;
  }
  return body;
}

const message = (entity: string, from = 'From: a@example.com\r\n'): Buffer => Buffer.from(`${from}To: b@example.org\r\nSubject: x\r\n${entity}`);

describe('mimeStructure', () => {
  it('measures nesting depth and parts', () => {
    expect(mimeStructure(message(nested(3)), { maxDepth: 20, maxParts: 100 })).toMatchObject({ depth: 3, parts: 4, fromCount: 1 });
  });

  it('counts parts of a flat multipart and an attached message', () => {
    const raw = message(
      'Content-Type: multipart/mixed; boundary=zz\r\n\r\npreamble\r\n--zz\r\nContent-Type: text/plain\r\n\r\none\r\n--zz\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.com\r\nSubject: inner\r\n\r\ninner body\r\n--zz--\r\nepilogue\r\n',
    );
    expect(mimeStructure(raw, { maxDepth: 20, maxParts: 100 })).toMatchObject({ depth: 2, parts: 4 });
  });
});

describe('mimeStructure against crafted headers (read as mailparser reads them)', () => {
  const deep = (contentType: (boundary: string) => string, levels = 30): Buffer => {
    let body = 'Content-Type: text/plain\r\n\r\nhello\r\n';
    for (let level = levels; level > 0; level--) {
      const boundary = `b${level}`;
      body = `${contentType(boundary)}\r\n\r\n--${boundary}\r\n${body}--${boundary}--\r\n`;
    }
    return message(body);
  };
  const limits = { maxDepth: 10, maxParts: 1000 };

  it('takes the boundary parameter, not another parameter ending in "boundary"', () => {
    expect(mimeStructure(deep((b) => `Content-Type: multipart/mixed; x-boundary=decoy; boundary="${b}"`), limits).depth).toBeGreaterThan(10);
  });

  it('joins an RFC 2231 boundary split into sections', () => {
    expect(mimeStructure(deep((b) => `Content-Type: multipart/mixed; boundary*0=${b.slice(0, 1)}; boundary*1=${b.slice(1)}`), limits).depth).toBeGreaterThan(10);
  });

  it('drops a comment after the boundary', () => {
    expect(mimeStructure(deep((b) => `Content-Type: multipart/mixed; boundary=${b} (a comment)`), limits).depth).toBeGreaterThan(10);
  });

  it('measures a message whose boundary is megabytes long without failing', () => {
    const boundary = '('.repeat(3_000_000);
    const raw = message(`Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\n\r\nx\r\n--${boundary}--\r\n`);
    expect(mimeStructure(raw, limits)).toMatchObject({ depth: 1, parts: 2 });
  });

  it('reads a Content-Type header with white space before the colon', () => {
    expect(mimeStructure(deep((b) => `Content-Type : multipart/mixed; boundary="${b}"`), limits).depth).toBeGreaterThan(10);
  });
});

describe('mimeSafetySymbols', () => {
  it('flags a message nested deeper than the cap', () => {
    const symbols = mimeSafetySymbols(message(nested(30)), { maxDepth: 10, maxParts: 1000 });
    expect(symbols.map((item) => item.name)).toEqual(['MIME_TOO_DEEP']);
  });

  it('flags a message with more parts than the cap', () => {
    const parts = Array.from({ length: 60 }, () => '--p\r\nContent-Type: text/plain\r\n\r\nx\r\n').join('');
    const symbols = mimeSafetySymbols(message(`Content-Type: multipart/mixed; boundary=p\r\n\r\n${parts}--p--\r\n`), { maxDepth: 10, maxParts: 50 });
    expect(symbols.map((item) => item.name)).toEqual(['MIME_TOO_MANY_PARTS']);
  });

  it('flags two From headers and none, but not a From inside the body', () => {
    expect(mimeSafetySymbols(message('\r\nbody\r\n', 'From: a@example.com\r\nFrom: ceo@example.com\r\n'), { maxDepth: 5, maxParts: 5 })).toEqual([
      { name: 'FROM_COUNT', evidence: { fromHeaders: 2 } },
    ]);
    expect(countFromHeaders(message('\r\nbody\r\nFrom: x@example.com\r\n', ''))).toBe(0);
    expect(mimeSafetySymbols(message('\r\nplain body\r\n'), { maxDepth: 5, maxParts: 5 })).toEqual([]);
  });
});
