// MIME safety checks that mailparser does not make: nesting depth and part count are capped (a
// deeply nested message is a parser bomb and a way to hide content from scanners), and exactly
// one From header (mailparser reports the first of two; DKIM verifiers use the last).
import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import type { Symbol } from '../checks/check.js';

export interface MimeLimits {
  maxDepth: number;
  maxParts: number;
}

export interface MimeStructure {
  /** Deepest nesting seen (the top-level entity is depth 0); stops counting past the limit. */
  depth: number;
  parts: number;
  fromCount: number;
}

const HEADER_END = /\r?\n\r?\n/;

function headerBlock(entity: string): { headers: string; body: string } {
  const match = HEADER_END.exec(entity);
  if (!match) return { headers: entity, body: '' };
  return { headers: entity.slice(0, match.index), body: entity.slice(match.index + match[0].length) };
}

/** The unfolded value of the first `name` header of a header block (the one mailparser uses). */
function headerValue(headers: string, name: string): string | undefined {
  const unfolded = headers.replace(/\r?\n[ \t]+/g, ' ');
  const match = new RegExp(`^${name}[ \\t]*:[ \\t]*(.*)$`, 'im').exec(unfolded);
  return match?.[1];
}

/**
 * The type and boundary of a Content-Type value, parsed as mailparser parses it (parameters by
 * name, RFC 2231 sections joined, comments dropped): a walker that read it otherwise would miss
 * the nesting that mailparser and the engines then see.
 */
function contentType(value: string | undefined): { type: string; boundary?: string } {
  if (value === undefined) return { type: 'text/plain' };
  const parsed = mimeFuncs.parseHeaderValue(value.replace(/\([^()"]*\)/g, ' '));
  const boundary = parsed.params.boundary?.trim();
  return { type: parsed.value.trim().toLowerCase(), ...(boundary ? { boundary } : {}) };
}

export function countFromHeaders(raw: Buffer): number {
  const { headers } = headerBlock(raw.toString('latin1'));
  return headers.split(/\r?\n/).filter((line) => /^from[ \t]*:/i.test(line)).length;
}

/** Walks the MIME tree of the raw message, stopping as soon as a limit is passed. */
export function mimeStructure(raw: Buffer, limits: MimeLimits): MimeStructure {
  const state = { depth: 0, parts: 0 };
  const walk = (entity: string, depth: number): void => {
    state.parts += 1;
    state.depth = Math.max(state.depth, depth);
    if (depth > limits.maxDepth || state.parts > limits.maxParts) return;
    const { headers, body } = headerBlock(entity);
    const { type, boundary } = contentType(headerValue(headers, 'content-type'));
    if (type.startsWith('message/rfc822')) {
      walk(body, depth + 1);
      return;
    }
    if (!type.startsWith('multipart/') || !boundary) return;
    const delimiter = `--${boundary}`;
    // A plain string split: a boundary may be any length, too long for a regular expression. A
    // CR before the delimiter stays at the end of the previous piece, which counting ignores.
    const pieces = `\n${body}`.split(`\n${delimiter}`);
    // pieces[0] is the preamble; a piece starting with "--" is the close delimiter and the epilogue.
    for (const piece of pieces.slice(1)) {
      if (piece.startsWith('--')) break;
      walk(piece.replace(/^[ \t]*\r?\n/, ''), depth + 1);
      if (state.depth > limits.maxDepth || state.parts > limits.maxParts) return;
    }
  };
  walk(raw.toString('latin1'), 0);
  return { ...state, fromCount: countFromHeaders(raw) };
}

/** The MIME safety symbols of a message; empty when it is within limits. */
export function mimeSafetySymbols(raw: Buffer, limits: MimeLimits): Symbol[] {
  const symbols: Symbol[] = [];
  const structure = mimeStructure(raw, limits);
  if (structure.depth > limits.maxDepth) symbols.push({ name: 'MIME_TOO_DEEP', evidence: { depthOver: limits.maxDepth } });
  if (structure.parts > limits.maxParts) symbols.push({ name: 'MIME_TOO_MANY_PARTS', evidence: { partsOver: limits.maxParts } });
  if (structure.fromCount !== 1) symbols.push({ name: 'FROM_COUNT', evidence: { fromHeaders: structure.fromCount } });
  return symbols;
}
