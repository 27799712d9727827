// Watches the DATA stream on its way to the blob store: counts bytes against the sender's size
// limit, finds bare CR and bare LF (the raw material of SMTP smuggling: `\n.\n`, `\r.\r`,
// `\n.\r\n`...), measures line lengths, and keeps the header block so that From headers can be
// checked; and NUL bytes (RFC 5321 §4.1.1.4: never in SMTP text; some servers drop them, which
// turns `\r\n\x00.\r\n` into an end of data one hop later). Once the message is known to be
// refused, nothing more is passed on to storage.
import { Transform, type TransformCallback } from 'node:stream';
import { headerValues } from '../core/headers.js';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;
const MAX_HEADER_BYTES = 256 * 1024;

export type DataDefect = 'too-big' | 'bare-line-ending' | 'nul-byte' | 'line-too-long' | 'header-too-big';

export class DataInspector extends Transform {
  bytes = 0;
  defect: DataDefect | undefined;
  defectAt: number | undefined;
  private previous = -1;
  private lineLength = 0;
  private headerChunks: Buffer[] = [];
  private headerBytes = 0;
  private headerDone = false;

  constructor(
    private readonly maxBytes: number,
    private readonly maxLineLength: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (!this.defect) this.inspect(chunk);
    if (!this.defect && this.bytes > this.maxBytes) this.flag('too-big', this.bytes);
    if (!this.headerDone) this.keepHeader(chunk);
    callback(null, this.defect ? undefined : chunk);
  }

  /** The raw header block (up to the first empty line), for header checks. */
  headerBlock(): string {
    const text = Buffer.concat(this.headerChunks).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    return end >= 0 ? text.slice(0, end + 2) : text;
  }

  /** Every From header field value, unfolded. */
  fromHeaders(): string[] {
    return headerValues(this.headerBlock(), 'from');
  }

  private inspect(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === NUL) return this.flag('nul-byte', this.bytes - chunk.length + i);
      if (byte === LF) {
        if (this.previous !== CR) return this.flag('bare-line-ending', this.bytes - chunk.length + i);
        this.lineLength = 0;
      } else {
        if (this.previous === CR) return this.flag('bare-line-ending', this.bytes - chunk.length + i);
        if (byte !== CR && ++this.lineLength > this.maxLineLength) {
          return this.flag('line-too-long', this.bytes - chunk.length + i);
        }
      }
      this.previous = byte ?? -1;
    }
  }

  override _flush(callback: TransformCallback): void {
    // A message may not end in a lone CR (the CRLF before the final dot belongs to the message).
    if (!this.defect && this.previous === CR) this.flag('bare-line-ending', this.bytes);
    callback();
  }

  private keepHeader(chunk: Buffer): void {
    this.headerChunks.push(chunk);
    this.headerBytes += chunk.length;
    if (Buffer.concat(this.headerChunks).includes('\r\n\r\n')) this.headerDone = true;
    else if (this.headerBytes > MAX_HEADER_BYTES) {
      this.headerDone = true;
      if (!this.defect) this.flag('header-too-big', this.headerBytes);
    }
  }

  private flag(defect: DataDefect, at: number): void {
    this.defect = defect;
    this.defectAt = at;
  }
}
