// Reading header fields from a raw RFC 5322 message (CRLF line endings, as the ingress stores it).

/** The header block of a raw message: up to the first empty line (or the first 64 KiB). */
export function headerBlock(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  return raw.subarray(0, end >= 0 ? end + 2 : Math.min(raw.length, 65_536)).toString('latin1');
}

/** Values of every header field named `name` (lower case) in a header block, unfolded and trimmed. */
export function headerValues(block: string, name: string): string[] {
  const unfolded = block.replace(/\r\n[ \t]+/g, ' ');
  const values: string[] = [];
  for (const line of unfolded.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) values.push(line.slice(colon + 1).trim());
  }
  return values;
}
