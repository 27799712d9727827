// Just enough MIME to take a bounce apart: header fields (unfolded), Content-Type parameters,
// transfer decoding and multipart splitting. Text is handled as latin1 so that no byte is lost.

export interface MimeEntity {
  headers: Map<string, string[]>;
  contentType: string;
  params: Record<string, string>;
  /** Decoded body (transfer encoding undone). */
  body: string;
  parts: MimeEntity[];
}

const MAX_DEPTH = 8;

export function splitHeaderBody(text: string): { head: string; body: string } {
  const normalised = text.replace(/\r\n?/g, '\n');
  const at = normalised.indexOf('\n\n');
  if (at < 0) return { head: normalised, body: '' };
  return { head: normalised.slice(0, at), body: normalised.slice(at + 2) };
}

/** Header fields by lower-cased name, values unfolded and trimmed, in order. */
export function parseHeaderFields(head: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  const unfolded = head.replace(/\n[ \t]+/g, ' ');
  for (const line of unfolded.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) continue;
    const list = fields.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    fields.set(name, list);
  }
  return fields;
}

export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  const [typePart = '', ...rest] = (value ?? 'text/plain').split(';');
  const params: Record<string, string> = {};
  const paramText = rest.join(';');
  for (const match of paramText.matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/g)) {
    const name = match[1]?.toLowerCase();
    if (name) params[name] = (match[2] ?? match[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { type: typePart.trim().toLowerCase() || 'text/plain', params };
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
    case 'quoted-printable':
      return body.replace(/=\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    default:
      return body;
  }
}

export function parseEntity(text: string, depth = 0): MimeEntity {
  const { head, body } = splitHeaderBody(text);
  const headers = parseHeaderFields(head);
  const { type, params } = parseContentType(headers.get('content-type')?.[0]);
  const decoded = decodeBody(body, headers.get('content-transfer-encoding')?.[0]);
  const entity: MimeEntity = { headers, contentType: type, params, body: decoded, parts: [] };
  if (depth >= MAX_DEPTH) return entity;
  if (type.startsWith('multipart/') && params.boundary) {
    entity.parts = splitMultipart(decoded, params.boundary).map((part) => parseEntity(part, depth + 1));
  } else if (type === 'message/rfc822' || type === 'message/global') {
    entity.parts = [parseEntity(decoded, depth + 1)];
  }
  return entity;
}

function splitMultipart(body: string, boundary: string): string[] {
  const lines = body.split('\n');
  const parts: string[] = [];
  let current: string[] | null = null;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === `--${boundary}--`) break;
    if (trimmed === `--${boundary}`) {
      if (current) parts.push(current.join('\n'));
      current = [];
      continue;
    }
    current?.push(line);
  }
  if (current) parts.push(current.join('\n'));
  return parts;
}

/** Every entity of the tree, depth first. */
export function walk(entity: MimeEntity): MimeEntity[] {
  return [entity, ...entity.parts.flatMap(walk)];
}
