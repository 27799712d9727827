// keepSmallOrSpill with a memory budget shared by sessions: a message is kept in memory only while
// the budget lends its bytes; past it, the message goes to the spill (a file) whole and in order,
// and the budget gets back whatever a spilled or failed message had taken.
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { keepSmallOrSpill, MemoryBudget, ownsItsMemory } from '../../smtp-ec2/small-message.js';

/** A stream of `chunks`, then its end. */
function source(chunks: string[]): Readable {
  return Readable.from(chunks.map((chunk) => Buffer.from(chunk)), { objectMode: false });
}

/** A spill that keeps what it was given, as the blob store would write it. */
function recordingSpill(): { spill: (whole: Readable) => Promise<void>; spilled: () => string | undefined } {
  let spilled: string | undefined;
  return {
    spill: async (whole) => {
      const parts: Buffer[] = [];
      for await (const part of whole) parts.push(part as Buffer);
      spilled = Buffer.concat(parts).toString();
    },
    spilled: () => spilled,
  };
}

describe('keepSmallOrSpill', () => {
  it('keeps a small message in memory of its own, not in a view into Node\'s shared pool (which would cross to the writer whole)', async () => {
    const kept = await keepSmallOrSpill(source(['From: a\r\n', '\r\nsmall\r\n']), 1_000, async () => undefined);
    expect(kept?.toString()).toBe('From: a\r\n\r\nsmall\r\n');
    expect(kept && ownsItsMemory(kept)).toBe(true);
    expect(kept?.buffer.byteLength).toBe(kept?.length);
  });
});

describe('keepSmallOrSpill with a memory budget', () => {
  it('keeps a message that fits both limits, holding its bytes until they are given back', async () => {
    const budget = new MemoryBudget(100);
    const { spill, spilled } = recordingSpill();
    const kept = await keepSmallOrSpill(source(['0123456789', 'abcdefghij']), 50, spill, budget);
    expect(kept?.toString()).toBe('0123456789abcdefghij');
    expect(spilled()).toBeUndefined();
    expect(budget.inUse).toBe(20);
    budget.give(kept?.length ?? 0);
    expect(budget.inUse).toBe(0);
  });

  it('spills a message the budget cannot lend, whole and in order, and takes nothing for it', async () => {
    const budget = new MemoryBudget(25);
    const first = await keepSmallOrSpill(source(['0123456789', 'abcdefghij']), 50, recordingSpill().spill, budget);
    expect(first?.length).toBe(20);
    const { spill, spilled } = recordingSpill();
    // Within queue.inlineBodyBytes (50), but only 5 bytes of the budget are left.
    const second = await keepSmallOrSpill(source(['ABCDEFGHIJ', 'KLMNOPQRST', 'UVWXYZ']), 50, spill, budget);
    expect(second).toBeUndefined();
    expect(spilled()).toBe('ABCDEFGHIJKLMNOPQRSTUVWXYZ');
    expect(budget.inUse).toBe(20);
    // Once the first is given back, the same message is kept again.
    budget.give(20);
    const third = await keepSmallOrSpill(source(['ABCDEFGHIJ', 'KLMNOPQRST']), 50, recordingSpill().spill, budget);
    expect(third?.toString()).toBe('ABCDEFGHIJKLMNOPQRST');
    expect(budget.inUse).toBe(20);
  });

  it('gives back what it had taken when a message grows past inlineBodyBytes, or its stream fails', async () => {
    const budget = new MemoryBudget(1000);
    const { spill, spilled } = recordingSpill();
    expect(await keepSmallOrSpill(source(['0123456789', 'abcdefghij', 'ABCDEFGHIJ']), 25, spill, budget)).toBeUndefined();
    expect(spilled()).toBe('0123456789abcdefghijABCDEFGHIJ');
    expect(budget.inUse).toBe(0);

    const failing = new PassThrough();
    const kept = keepSmallOrSpill(failing, 1000, recordingSpill().spill, budget);
    failing.write(Buffer.from('0123456789'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(budget.inUse).toBe(10);
    failing.destroy(new Error('the client closed the connection during DATA'));
    await expect(kept).rejects.toThrow('the client closed the connection during DATA');
    expect(budget.inUse).toBe(0);
  });
});

describe('keepSmallOrSpill with a first chunk and an inspection', () => {
  /** An inspection that sees every chunk and refuses the message once it meets a "!". */
  function inspecting(): { seen: string[]; take: (chunk: Buffer) => boolean } {
    const seen: string[] = [];
    let refused = false;
    return {
      seen,
      take: (chunk) => {
        seen.push(chunk.toString());
        refused ||= chunk.includes('!');
        return !refused;
      },
    };
  }

  it('keeps the first chunk ahead of the stream, counted against both limits, and shows every chunk to the inspection once', async () => {
    const budget = new MemoryBudget(100);
    const { seen, take } = inspecting();
    const kept = await keepSmallOrSpill(source(['0123456789', 'abcdefghij']), 40, recordingSpill().spill, budget, { first: Buffer.from('Received: x\r\n'), take });
    expect(kept?.toString()).toBe('Received: x\r\n0123456789abcdefghij');
    expect(seen).toEqual(['Received: x\r\n', '0123456789', 'abcdefghij']);
    expect(budget.inUse).toBe(33);
  });

  it('spills the first chunk and the stream in order, each chunk inspected once, when they outgrow the limit', async () => {
    const budget = new MemoryBudget(1000);
    const { spill, spilled } = recordingSpill();
    const { seen, take } = inspecting();
    expect(await keepSmallOrSpill(source(['0123456789', 'abcdefghij', 'ABCDEFGHIJ']), 25, spill, budget, { first: Buffer.from('HEAD'), take })).toBeUndefined();
    expect(spilled()).toBe('HEAD0123456789abcdefghijABCDEFGHIJ');
    // The chunks read after the spill began may arrive joined: every byte is inspected once, in order.
    expect(seen.slice(0, 3)).toEqual(['HEAD', '0123456789', 'abcdefghij']);
    expect(seen.join('')).toBe('HEAD0123456789abcdefghijABCDEFGHIJ');
    expect(budget.inUse).toBe(0);
  });

  it('spills the first chunk and the whole stream, in order and inspected once, when the budget cannot lend even the first chunk (every session holding its share)', async () => {
    const budget = new MemoryBudget(30);
    const held = await keepSmallOrSpill(source(['0123456789', 'abcdefghij']), 40, recordingSpill().spill, budget);
    expect(held?.length).toBe(20);
    const { spill, spilled } = recordingSpill();
    const { seen, take } = inspecting();
    // 10 bytes are left to lend: not the 16 of the first chunk, though the 10 of the stream would fit.
    expect(await keepSmallOrSpill(source(['0123456789']), 40, spill, budget, { first: Buffer.from('HEADER-16-BYTES:'), take })).toBeUndefined();
    expect(spilled()).toBe('HEADER-16-BYTES:0123456789');
    expect(seen).toEqual(['HEADER-16-BYTES:', '0123456789']);
    // Nothing of it was taken; the first message's bytes are still held.
    expect(budget.inUse).toBe(20);
  });

  it('stores nothing of a message from the chunk its inspection refuses, in memory or spilled, and reads it to its end', async () => {
    const budget = new MemoryBudget(1000);
    const small = inspecting();
    const kept = await keepSmallOrSpill(source(['0123', '45!67', '89']), 100, recordingSpill().spill, budget, { take: small.take });
    expect(kept?.toString()).toBe('0123');
    expect(small.seen).toEqual(['0123', '45!67', '89']);
    budget.give(kept?.length ?? 0);

    const large = inspecting();
    const { spill, spilled } = recordingSpill();
    expect(await keepSmallOrSpill(source(['0123456789', 'abcdefghij', 'AB!CD', 'EFGHIJ']), 15, spill, budget, { take: large.take })).toBeUndefined();
    expect(spilled()).toBe('0123456789abcdefghij');
    expect(large.seen.join('')).toBe('0123456789abcdefghijAB!CDEFGHIJ');
    expect(budget.inUse).toBe(0);
  });
});
