// Who may deliver where, and for how long. Two rules keep one slow or dead destination from
// delaying the others (head-of-line blocking):
//   - a destination (a recipient domain, or the smarthost) has at most `perDestination`
//     deliveries in progress; a job that finds its destination full waits a little, then is
//     postponed (queued again for a few seconds) so that it does not hold a worker;
//   - one attempt tries at most `mxAddressLimit` addresses (Postfix's smtp_mx_address_limit)
//     within a time budget, so a domain of unanswering hosts costs a bounded time.
// The overall number of jobs at once is bounded by the queue consumer (the single node's poller,
// Lambda's concurrency), independently of batches. Sessions left open after a delivery are kept
// in `connections` and reused by the next delivery to the same destination (connection-cache.ts).
import type { Config } from '../config.js';
import type { Logger } from '../ports.js';
import { ConnectionCache } from './connection-cache.js';

/** A delivery in progress to one destination; release it when the transaction is over. */
export interface DestinationSlot {
  readonly destination: string;
  release(): void;
}

export interface SchedulerLimits {
  /** Deliveries in progress to one destination (delivery.destinationConcurrency). */
  perDestination: number;
  /** How long a job waits for a slot of a full destination before it is postponed. */
  waitMs: number;
  /** How long a delivered-over session stays open for the next message (delivery.connectionIdleSeconds); 0: no reuse (the default here). */
  connectionIdleMs?: number;
  /** Messages over one session (delivery.messagesPerConnection). */
  messagesPerConnection?: number;
}

interface Destination {
  active: number;
  /** Jobs waiting for a slot, oldest first. */
  waiting: Array<(slot: DestinationSlot) => void>;
}

/** How long a job that found its destination full waits before it is tried again (not an attempt). */
export const POSTPONE_SECONDS = 5;

/** Default wait for a slot: long enough to ride out a busy healthy destination, short next to an attempt. */
export const SLOT_WAIT_MS = 2000;

export class DeliveryScheduler {
  private readonly destinations = new Map<string, Destination>();
  /** Idle sessions per destination, reused by the next delivery there. */
  readonly connections: ConnectionCache;

  constructor(
    private readonly limits: SchedulerLimits,
    logger?: Logger,
  ) {
    this.connections = new ConnectionCache(
      { perDestination: limits.perDestination, idleMs: limits.connectionIdleMs ?? 0, maxMessages: limits.messagesPerConnection ?? 1 },
      logger,
    );
  }

  static fromConfig(config: Pick<Config, 'delivery'>, logger?: Logger): DeliveryScheduler {
    const { delivery } = config;
    return new DeliveryScheduler(
      {
        perDestination: delivery.destinationConcurrency,
        waitMs: SLOT_WAIT_MS,
        connectionIdleMs: delivery.connectionIdleSeconds * 1000,
        messagesPerConnection: delivery.messagesPerConnection,
      },
      logger,
    );
  }

  /** Closes the sessions kept for reuse (at shutdown). */
  close(): void {
    this.connections.close();
  }

  /** Deliveries in progress to `destination` now. */
  active(destination: string): number {
    return this.destinations.get(destination)?.active ?? 0;
  }

  /**
   * A slot for `destination`, at once if it has one free, else after waiting up to waitMs for
   * one to be released; undefined when none came (the caller postpones the job).
   */
  acquire(destination: string): Promise<DestinationSlot | undefined> {
    const entry = this.destinations.get(destination) ?? { active: 0, waiting: [] };
    this.destinations.set(destination, entry);
    if (entry.active < this.limits.perDestination) {
      entry.active += 1;
      return Promise.resolve(this.slot(destination, entry));
    }
    return new Promise((resolve) => {
      const grant = (slot: DestinationSlot): void => {
        clearTimeout(timer);
        resolve(slot);
      };
      const timer = setTimeout(() => {
        entry.waiting = entry.waiting.filter((waiter) => waiter !== grant);
        this.forgetIfIdle(destination, entry);
        resolve(undefined);
      }, this.limits.waitMs);
      entry.waiting.push(grant);
    });
  }

  private slot(destination: string, entry: Destination): DestinationSlot {
    let released = false;
    return {
      destination,
      release: () => {
        if (released) return;
        released = true;
        const next = entry.waiting.shift();
        // The slot passes straight to the oldest waiter; `active` stays the same.
        if (next) return next(this.slot(destination, entry));
        entry.active -= 1;
        this.forgetIfIdle(destination, entry);
      },
    };
  }

  private forgetIfIdle(destination: string, entry: Destination): void {
    if (entry.active === 0 && entry.waiting.length === 0) this.destinations.delete(destination);
  }
}

/** The time left of one attempt's budget (delivery.attemptTimeoutSeconds). */
export interface AttemptBudget {
  /** Milliseconds left; 0 or less when spent. */
  remaining(): number;
  readonly totalMs: number;
}

export function attemptBudget(totalMs: number, now: () => number = Date.now): AttemptBudget {
  const deadline = now() + totalMs;
  return { totalMs, remaining: () => deadline - now() };
}
