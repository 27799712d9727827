// Mutations shared by the SMTP and MIME fuzzers: the damage a broken or hostile client does to a
// well-formed line or message (bytes flipped, line endings and NULs inserted, pieces cut, repeated
// or blown up past the limits).
import type { Prng } from './prng.js';

const SPECIAL = ['\r', '\n', '\r\n', '\x00', '.', '\r\n.\r\n', '\n.\n', '\r.\r', ' ', '\t', '<', '>', ':', '@', '"', '\\', '=', '\x1b', '\xff', '%', '!'];

/** One random mutation of `input` (or `input` itself now and then). */
export function mutate(rng: Prng, input: string): string {
  if (input.length === 0) return rng.pick(SPECIAL);
  const at = rng.int(0, input.length);
  switch (rng.int(0, 9)) {
    case 0: {
      // flip one byte
      const code = rng.int(0, 255);
      return input.slice(0, at) + String.fromCharCode(code) + input.slice(at + 1);
    }
    case 1:
      return input.slice(0, at) + rng.pick(SPECIAL) + input.slice(at);
    case 2:
      return input.slice(0, at);
    case 3:
      return input.slice(at);
    case 4: {
      const piece = input.slice(at, at + rng.int(1, 32));
      return input.slice(0, at) + piece.repeat(rng.int(2, rng.chance(0.1) ? 2000 : 20)) + input.slice(at);
    }
    case 5:
      return input.toUpperCase();
    case 6:
      return input + 'A'.repeat(rng.pick([100, 998, 999, 4096, 5000, 70_000]));
    case 7:
      return input.replace(/\r\n/g, rng.pick(['\n', '\r', '\r\r\n', '\r\n\r\n']));
    case 8:
      return rng.bytes(rng.int(1, 64)).toString('latin1');
    default:
      return input;
  }
}

/** `input` mutated `count` times. */
export function mutateMany(rng: Prng, input: string, count: number): string {
  let out = input;
  for (let i = 0; i < count; i++) out = mutate(rng, out);
  return out;
}
