// Where the single node keeps a message depends on its size, which is known only at the end of
// DATA: the stream is read into memory while it stays small; a small message is committed with
// its queue entry (one fsync shared by many messages), a larger one goes on to the blob store as
// a stream of what was read so far followed by the rest, so memory stays bounded per session.
import { Readable } from 'node:stream';

export interface KeepOptions {
  /** Bytes that come before the source's (the ingress's Received header): kept, counted and given to `take` first. */
  first?: Buffer;
  /**
   * Sees every chunk, in order, before it is kept or spilled; a chunk it answers false to is
   * dropped (the message is known to be refused: its bytes are read to the end, not stored).
   */
  take?: (chunk: Buffer) => boolean;
}

/**
 * The whole of `source` when it ends within `maxBytes`; otherwise `undefined` once `spill` (given
 * the same bytes as a stream) has stored it. Rejects when `source` fails or closes before its
 * end (a client that leaves mid-DATA), with nothing kept.
 */
export async function keepSmallOrSpill(
  source: Readable,
  maxBytes: number,
  spill: (whole: Readable) => Promise<unknown>,
  budget: MemoryBudget = UNBOUNDED,
  options: KeepOptions = {},
): Promise<Buffer | undefined> {
  const take = options.take ?? keepAll;
  const read = await readUpTo(source, maxBytes, budget, take, options.first);
  if (read.ended) return standalone(read.chunks);
  await spill(Readable.from(rejoined(read.chunks, source, take), { objectMode: false }));
  return undefined;
}

const keepAll = (): boolean => true;

/**
 * The bytes of small messages all sessions may hold in memory at once, waiting for their group
 * commit (queue.inlineBodyMemoryBytes). A message that would go past it is stored as a large one
 * is (a file), so that a thousand sessions each sending a message just under
 * queue.inlineBodyBytes cannot take a thousand times that of memory. A kept message's bytes are
 * given back once it is committed or refused.
 */
export class MemoryBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Takes `bytes` if they fit; false (and nothing taken) if not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  /** Bytes held now. */
  get inUse(): number {
    return this.used;
  }
}

const UNBOUNDED = new MemoryBudget(Number.POSITIVE_INFINITY);

/**
 * The chunks joined in a buffer with an ArrayBuffer of its own, exactly its size. Buffer.concat
 * takes anything under 4 KiB from Node's shared 8 KiB pool, and a view into the pool crosses to
 * the writer thread with the whole pool copied (structured clone copies a view's entire
 * ArrayBuffer); a buffer of its own is copied at its size, or moved (ThreadedAcceptanceBatch
 * transfers it).
 */
export function standalone(chunks: Buffer[]): Buffer {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const whole = Buffer.allocUnsafeSlow(size);
  let offset = 0;
  for (const chunk of chunks) offset += chunk.copy(whole, offset);
  return whole;
}

/** Whether `bytes` is the whole of its ArrayBuffer, i.e. may be transferred without taking anything else with it. */
export function ownsItsMemory(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
}

async function* rejoined(head: Buffer[], rest: Readable, take: (chunk: Buffer) => boolean): AsyncGenerator<Buffer> {
  yield* head;
  for await (const chunk of rest) if (take(chunk as Buffer)) yield chunk as Buffer;
}

/**
 * Reads `source` while it stays within `maxBytes` and `budget` lends the bytes: `ended` when it
 * ended so (the bytes stay taken from the budget), else what was read so far (given back, as on
 * an error: the rest is not kept in memory).
 */
function readUpTo(source: Readable, maxBytes: number, budget: MemoryBudget, take: (chunk: Buffer) => boolean, first: Buffer | undefined): Promise<{ chunks: Buffer[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let taken = 0;
    const stop = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
    };
    /** Keeps `chunk`; false once it no longer fits (what was read so far is then the head of a spill). */
    const keep = (chunk: Buffer): boolean => {
      if (!take(chunk)) return true;
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes <= maxBytes && budget.take(chunk.length)) {
        taken += chunk.length;
        return true;
      }
      budget.give(taken);
      return false;
    };
    const onData = (chunk: Buffer): void => {
      if (keep(chunk)) return;
      source.pause();
      stop();
      resolve({ chunks, ended: false });
    };
    if (first && !keep(first)) {
      resolve({ chunks, ended: false });
      return;
    }
    const onEnd = (): void => {
      stop();
      resolve({ chunks, ended: true });
    };
    const onError = (error: unknown): void => {
      stop();
      budget.give(taken);
      reject(error);
    };
    const onClose = (): void => {
      stop();
      budget.give(taken);
      reject(new Error('the message stream closed before its end'));
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
  });
}
