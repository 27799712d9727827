// headerValues reads field by field and unfolds only the fields asked for (the ingress asks it for
// every message). The reading it must agree with is the plain one kept here: unfold every fold,
// split into lines, match the name before the first colon.
import { describe, expect, it } from 'vitest';
import { headerValues } from '../../core/headers.js';
import { seededRandom } from '../helpers/random.js';

function reference(block: string, name: string): string[] {
  const values: string[] = [];
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) values.push(line.slice(colon + 1).trim());
  }
  return values;
}

const PIECES = ['From', 'from', 'FROM ', ' Subject', 'To', ':', ': ', 'a@b.example', '<c@d.example>', ' ', '\t', '\r\n', '\r\n ', '\r\n\t', '\r', '\n', 'x', '"q:r"', ',', 'Fr\r\n om'];

describe('headerValues', () => {
  it('reads folded, repeated and oddly spaced fields as the unfold-then-split reading does', () => {
    const block = 'From: Alice\r\n <alice@a.example>\r\nSubject: one\r\n\ttwo\r\nfrom:second@b.example\r\nX-Empty:\r\n';
    expect(headerValues(block, 'from')).toEqual(['Alice <alice@a.example>', 'second@b.example']);
    expect(headerValues(block, 'subject')).toEqual(['one two']);
    expect(headerValues(block, 'x-empty')).toEqual(['']);
    expect(headerValues(block, 'to')).toEqual([]);
  });

  it('agrees with the reference on random header blocks', () => {
    for (let seed = 1; seed <= 3000; seed++) {
      const next = seededRandom(seed);
      const parts = Array.from({ length: 1 + Math.floor(next() * 24) }, () => PIECES[Math.floor(next() * PIECES.length)] as string);
      const block = parts.join('');
      for (const name of ['from', 'subject', 'to']) {
        expect(headerValues(block, name), `seed ${seed}, ${JSON.stringify(block)}, ${name}`).toEqual(reference(block, name));
      }
    }
  });
});
