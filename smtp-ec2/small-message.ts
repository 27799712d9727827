// Where the single node keeps a message depends on its size, which is known only at the end of
// DATA: the stream is read into memory while it stays small; a small message is committed with
// its queue entry (one fsync shared by many messages), a larger one goes on to the blob store as
// a stream of what was read so far followed by the rest, so memory stays bounded per session.
import { Readable } from 'node:stream';

/**
 * The whole of `source` when it ends within `maxBytes`; otherwise `undefined` once `spill` (given
 * the same bytes as a stream) has stored it. Rejects when `source` fails or closes before its
 * end (a client that leaves mid-DATA), with nothing kept.
 */
export async function keepSmallOrSpill(source: Readable, maxBytes: number, spill: (whole: Readable) => Promise<unknown>): Promise<Buffer | undefined> {
  const read = await readUpTo(source, maxBytes);
  if (read.ended) return Buffer.concat(read.chunks);
  await spill(Readable.from(rejoined(read.chunks, source), { objectMode: false }));
  return undefined;
}

async function* rejoined(head: Buffer[], rest: Readable): AsyncGenerator<Buffer> {
  yield* head;
  for await (const chunk of rest) yield chunk as Buffer;
}

function readUpTo(source: Readable, maxBytes: number): Promise<{ chunks: Buffer[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const stop = (): void => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes <= maxBytes) return;
      source.pause();
      stop();
      resolve({ chunks, ended: false });
    };
    const onEnd = (): void => {
      stop();
      resolve({ chunks, ended: true });
    };
    const onError = (error: unknown): void => {
      stop();
      reject(error);
    };
    const onClose = (): void => {
      stop();
      reject(new Error('the message stream closed before its end'));
    };
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
  });
}
