// MD5 of a short string, computed in JavaScript, for the simhash of fuzzy fingerprints
// (fingerprint.ts): a message's body makes hundreds of features of a few bytes each, and a call
// into OpenSSL per feature (a digest context, a Buffer for the result) cost about five times what
// the digest itself does. The result is MD5 exactly (RFC 1321), so fingerprints stay comparable
// with those stored before; only the first 64 bits are returned, as the simhash uses them.

import { hash } from 'node:crypto';

/** Per-round shift amounts and the sine-derived constants of RFC 1321. */
const S = Int32Array.from([7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]);
const K = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);

/**
 * Longest text (UTF-16 units) hashed here; longer ones (a word of thousands of letters) go to
 * OpenSSL, where the call costs nothing next to the hashing, so that the buffer below stays small
 * instead of growing to the largest token any message ever had.
 */
const MAX_TEXT_UNITS = 1024;

/** The words below are the host's: MD5 reads little-endian ones (every platform Node runs on but a few). */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** The message, padded, as little-endian 32-bit words: room for MAX_TEXT_UNITS in UTF-8, the padding and the length. */
const words = new Int32Array((Math.ceil((MAX_TEXT_UNITS * 3 + 9) / 64) * 64) / 4);
const bytes = new Uint8Array(words.buffer);

/** The UTF-8 bytes of `text` into `bytes` (surrogate pairs as one code point, lone ones as U+FFFD, as Buffer.from does); returns their count. */
function encodeUtf8(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      bytes[n++] = code;
      continue;
    }
    if (code < 0x800) {
      bytes[n++] = 0xc0 | (code >> 6);
      bytes[n++] = 0x80 | (code & 0x3f);
      continue;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        i++;
        bytes[n++] = 0xf0 | (code >> 18);
        bytes[n++] = 0x80 | ((code >> 12) & 0x3f);
        bytes[n++] = 0x80 | ((code >> 6) & 0x3f);
        bytes[n++] = 0x80 | (code & 0x3f);
        continue;
      }
      code = 0xfffd;
    }
    bytes[n++] = 0xe0 | (code >> 12);
    bytes[n++] = 0x80 | ((code >> 6) & 0x3f);
    bytes[n++] = 0x80 | (code & 0x3f);
  }
  return n;
}

/**
 * The first 8 bytes of MD5(UTF-8 of `text`) as two big-endian 32-bit numbers (as
 * `digest.readUInt32BE(0)` and `digest.readUInt32BE(4)` would read them).
 */
export function md5Prefix(text: string): { high: number; low: number } {
  if (text.length > MAX_TEXT_UNITS || !LITTLE_ENDIAN) {
    const digest = hash('md5', text, 'buffer');
    return { high: digest.readUInt32BE(0), low: digest.readUInt32BE(4) };
  }
  const length = encodeUtf8(text);
  const blocks = Math.floor((length + 8) / 64) + 1;
  bytes.fill(0, length, blocks * 64);
  bytes[length] = 0x80;
  // The length in bits, little-endian 64-bit (strings here are far below 2^29 bytes).
  words[blocks * 16 - 2] = length << 3;
  words[blocks * 16 - 1] = length >>> 29;
  let a0 = 0x67452301 | 0;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476 | 0;
  for (let block = 0; block < blocks; block++) {
    const base = block * 16;
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    // The four rounds of 16 steps (F, G, H, I), each step a rotation of a, b, c, d.
    for (let i = 0; i < 16; i++) {
      const sum = (a + ((b & c) | (~b & d)) + (K[i] as number) + (words[base + i] as number)) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + rotate(sum, S[i] as number)) | 0;
    }
    for (let i = 16; i < 32; i++) {
      const sum = (a + ((d & b) | (~d & c)) + (K[i] as number) + (words[base + ((5 * i + 1) & 15)] as number)) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + rotate(sum, S[i] as number)) | 0;
    }
    for (let i = 32; i < 48; i++) {
      const sum = (a + (b ^ c ^ d) + (K[i] as number) + (words[base + ((3 * i + 5) & 15)] as number)) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + rotate(sum, S[i] as number)) | 0;
    }
    for (let i = 48; i < 64; i++) {
      const sum = (a + (c ^ (b | ~d)) + (K[i] as number) + (words[base + ((7 * i) & 15)] as number)) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + rotate(sum, S[i] as number)) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  // The digest's bytes are the state words little-endian: read big-endian, each word is swapped.
  return { high: byteSwap(a0), low: byteSwap(b0) };
}

function rotate(word: number, shift: number): number {
  return (word << shift) | (word >>> (32 - shift));
}

function byteSwap(word: number): number {
  return (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0;
}
