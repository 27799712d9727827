// The single node's pipeline gives way to an ingress burst (queue.burstDeferSeconds,
// queue.burstMessagesPerSecond): what the relay queues on 'scan' is counted here, and the scan
// poller (poller.ts, its `minAgeMs`) leaves young messages in the queue while this says so.
//
// With the pipeline in a worker thread (bin/pipeline-thread.ts) the count lives in memory both
// threads share: the relay's thread counts into it as it queues, and the worker's poller reads
// it. The relay then need not wake the worker for every batch it queues during a burst, only to
// have it count the batch and go back to waiting (a poller that defers ignores nudges anyway):
// on this machine a message to a sleeping thread costs its sender 30–45 µs, against 2–3 µs to a
// busy one.
import { performance } from 'node:perf_hooks';

/** The queue the ingress puts accepted mail on: what it queues there makes a burst. */
export const INGRESS_QUEUE = 'scan';

const BUCKET_MS = 100;
const BUCKETS = 10;

/**
 * The ingress first, during a burst: counts the messages the ingress queued over the last second
 * and, while that is at least `threshold`, asks the pipeline's scan poller to leave messages
 * younger than `deferMs` in the queue (queue.burstDeferSeconds). A burst is then accepted without
 * the pipeline's scanning, signing, delivering and database writes competing with its sessions
 * for the CPU and the write lock; the pipeline catches up after it. Under a load that never ends,
 * every message waits `deferMs` and the pipeline then runs as it would have: deferral adds
 * latency, never a limit on throughput, and no message waits longer than `deferMs` for it.
 *
 * The count is a ring of ten 100 ms buckets, each with the number of its 100 ms slot. One thread
 * counts (`queued`), any thread reads (`minAgeMs`, which changes nothing): a bucket whose slot is
 * more than a second old counts for nothing, and is reset by the next `queued` that lands in it.
 */
export class BurstDeferral {
  /** counts[i], then slots[i]: the slot number (time / 100 ms, to 32 bits) each bucket counts for; bucket i counts the slots whose number ends in i. */
  private readonly counts: Int32Array;
  private readonly slots: Int32Array;

  /** Memory for a count that another thread reads: pass it to a BurstDeferral on each side. */
  static sharedMemory(): SharedArrayBuffer {
    return new SharedArrayBuffer(2 * BUCKETS * Int32Array.BYTES_PER_ELEMENT);
  }

  constructor(
    private readonly deferMs: number,
    /** Messages in the last second from which the ingress is in a burst (queue.burstMessagesPerSecond). */
    private readonly threshold: number,
    /**
     * Milliseconds on a clock both threads share: the time origin of each thread plus its
     * monotonic clock (performance.now() alone starts at each thread's own start).
     */
    private readonly now: () => number = () => performance.timeOrigin + performance.now(),
    memory: SharedArrayBuffer | ArrayBuffer = new ArrayBuffer(2 * BUCKETS * Int32Array.BYTES_PER_ELEMENT),
  ) {
    this.counts = new Int32Array(memory, 0, BUCKETS);
    // A fresh ring's buckets count 0 for slot 0: whatever slot they claim, they add nothing.
    this.slots = new Int32Array(memory, BUCKETS * Int32Array.BYTES_PER_ELEMENT, BUCKETS);
  }

  /** The ingress queued `count` messages. Only one thread counts into a ring. */
  queued(count: number): void {
    const slot = this.slot();
    // The index from the whole slot number: its 32-bit form jumps at the wrap.
    const index = slot % BUCKETS;
    const stored = slot | 0;
    if (Atomics.load(this.slots, index) !== stored) {
      Atomics.store(this.counts, index, 0);
      Atomics.store(this.slots, index, stored);
    }
    Atomics.add(this.counts, index, count);
  }

  /** How long a new message waits now: `deferMs` during a burst, else 0. */
  minAgeMs(): number {
    if (this.deferMs <= 0) return 0;
    const slot = this.slot() | 0;
    let lastSecond = 0;
    for (let i = 0; i < BUCKETS; i += 1) {
      const age = (slot - Atomics.load(this.slots, i)) | 0;
      if (age >= 0 && age < BUCKETS) lastSecond += Atomics.load(this.counts, i);
    }
    return lastSecond >= this.threshold ? this.deferMs : 0;
  }

  /** The current 100 ms slot (since 1970: kept to 32 bits, whose differences stay right across the wrap). */
  private slot(): number {
    return Math.max(0, Math.floor(this.now() / BUCKET_MS));
  }
}
