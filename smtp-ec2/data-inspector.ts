// Watches the DATA stream on its way to the blob store: counts bytes against the sender's size
// limit, finds bare CR and bare LF (the raw material of SMTP smuggling: `\n.\n`, `\r.\r`,
// `\n.\r\n`...), measures line lengths, and keeps the header block so that From headers can be
// checked; and NUL bytes (RFC 5321 §4.1.1.4: never in SMTP text; some servers drop them, which
// turns `\r\n\x00.\r\n` into an end of data one hop later). Once the message is known to be
// refused, nothing more is passed on to storage.
import { Transform, type TransformCallback } from 'node:stream';

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
    callback(null, this.inspectChunk(chunk) ? chunk : undefined);
  }

  /**
   * Inspects the next chunk of the message without streaming it: whether it may be stored (false
   * once the message is known to be refused); inspectEnd() after the last. The ingress reads a small message's chunks from
   * smtp-server's stream itself, through this, instead of piping them through the transform: a
   * stream stage per message was a twentieth of the relay's thread.
   */
  inspectChunk(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (!this.defect) this.inspect(chunk);
    if (!this.defect && this.bytes > this.maxBytes) this.flag('too-big', this.bytes);
    if (!this.headerDone) this.keepHeader(chunk);
    return !this.defect;
  }

  /** The raw header block (up to the first empty line), for header checks. */
  headerBlock(): string {
    const text = Buffer.concat(this.headerChunks).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    return end >= 0 ? text.slice(0, end + 2) : text;
  }

  /**
   * Finds the first defect of `chunk` in byte order, as a byte-by-byte reading would (that
   * reading is kept in the tests as the reference), but jumps between the CR and LF bytes with
   * Buffer.indexOf: the bytes between them only lengthen the line. Per byte in JavaScript, this
   * was 4 ns a byte, the largest part of the relay's work on a message's content.
   */
  private inspect(chunk: Buffer): void {
    const base = this.bytes - chunk.length;
    const nulAt = chunk.indexOf(NUL);
    // Up to the first NUL: a defect before it is the first; if there is none, the NUL is.
    const end = nulAt >= 0 ? nulAt : chunk.length;
    const next = (byte: number, from: number): number => {
      const at = from < end ? chunk.indexOf(byte, from) : -1;
      return at < 0 || at > end ? end : at;
    };
    let nextCr = next(CR, 0);
    let nextLf = next(LF, 0);
    let i = 0;
    while (i < end) {
      const stop = Math.min(nextCr, nextLf);
      if (stop > i) {
        // Bytes that are neither CR nor LF, up to the next CR or LF (or the end).
        if (this.previous === CR) return this.flag('bare-line-ending', base + i);
        const room = this.maxLineLength - this.lineLength;
        if (stop - i > room) return this.flag('line-too-long', base + i + room);
        this.lineLength += stop - i;
        this.previous = chunk[stop - 1] ?? -1;
        i = stop;
        continue;
      }
      if (chunk[i] === LF) {
        if (this.previous !== CR) return this.flag('bare-line-ending', base + i);
        this.lineLength = 0;
        this.previous = LF;
        nextLf = next(LF, i + 1);
      } else {
        if (this.previous === CR) return this.flag('bare-line-ending', base + i);
        this.previous = CR;
        nextCr = next(CR, i + 1);
      }
      i += 1;
    }
    if (nulAt >= 0) this.flag('nul-byte', base + nulAt);
  }

  override _flush(callback: TransformCallback): void {
    this.inspectEnd();
    callback();
  }

  /** The message has ended: it may not end in a lone CR (the CRLF before the final dot belongs to the message). */
  inspectEnd(): void {
    if (!this.defect && this.previous === CR) this.flag('bare-line-ending', this.bytes);
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
