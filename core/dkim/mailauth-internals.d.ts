// Types for the internal modules of mailauth (CommonJS, no declarations) that DKIM signing
// reuses: header parsing, relaxed canonicalisation, the body hash, the signature header format.
declare module 'mailauth/lib/tools.js' {
  interface ParsedHeader {
    key: string | null;
    casedKey?: string;
    line: Buffer;
  }
  const tools: {
    parseHeaders(buf: Buffer): { parsed: ParsedHeader[] };
    formatRelaxedLine(line: Buffer | string, suffix?: string): Buffer;
    formatSignatureHeaderLine(type: 'DKIM', values: Record<string, string | number>, folded: boolean): string;
  };
  export default tools;
}

declare module 'mailauth/lib/dkim/body/index.js' {
  interface BodyHasher {
    update(chunk: Buffer): void;
    digest(encoding: 'base64'): string;
  }
  const body: {
    dkimBody(canonicalization: string, algorithm: string, maxBodyLength: false): BodyHasher;
  };
  export default body;
}
