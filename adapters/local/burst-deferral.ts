// The single node's pipeline gives way to an ingress burst (queue.burstDeferSeconds,
// queue.burstMessagesPerSecond): bin/pipeline.ts counts what the relay queues on 'scan', and the
// scan poller (poller.ts, its `minAgeMs`) leaves young messages in the queue while this says so.
import { performance } from 'node:perf_hooks';

/**
 * The ingress first, during a burst: counts the messages the ingress queued over the last second
 * and, while that is at least `threshold`, asks the pipeline's scan poller to leave messages
 * younger than `deferMs` in the queue (queue.burstDeferSeconds). A burst is then accepted without
 * the pipeline's scanning, signing, delivering and database writes competing with its sessions
 * for the CPU and the write lock; the pipeline catches up after it. Under a load that never ends,
 * every message waits `deferMs` and the pipeline then runs as it would have: deferral adds
 * latency, never a limit on throughput, and no message waits longer than `deferMs` for it.
 */
export class BurstDeferral {
  private static readonly BUCKET_MS = 100;
  /** Messages queued in each 100 ms of the last second, a ring indexed by time. */
  private readonly buckets = new Array<number>(10).fill(0);
  private newest = 0;

  constructor(
    private readonly deferMs: number,
    /** Messages in the last second from which the ingress is in a burst (queue.burstMessagesPerSecond). */
    private readonly threshold: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The ingress queued `count` messages. */
  queued(count: number): void {
    const slot = this.advance();
    this.buckets[slot % this.buckets.length]! += count;
  }

  /** How long a new message waits now: `deferMs` during a burst, else 0. */
  minAgeMs(): number {
    if (this.deferMs <= 0) return 0;
    this.advance();
    let lastSecond = 0;
    for (const count of this.buckets) lastSecond += count;
    return lastSecond >= this.threshold ? this.deferMs : 0;
  }

  /** Empties the buckets that time has passed since the newest; returns the current slot. */
  private advance(): number {
    const slot = Math.floor(this.now() / BurstDeferral.BUCKET_MS);
    const stale = Math.min(slot - this.newest, this.buckets.length);
    for (let i = 1; i <= stale; i += 1) this.buckets[(this.newest + i) % this.buckets.length] = 0;
    if (slot > this.newest) this.newest = slot;
    return this.newest;
  }
}
