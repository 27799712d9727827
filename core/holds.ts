// Held mail: queued messages kept out of the pipeline until someone decides about them, like
// Postfix's hold queue (postsuper -h / -H / -d). A sender's mail is held when
//   - the sender is locked (automatic lock after abuse, or a manual lock): whatever it had queued
//     before the lock is caught by the scan and deliver stages before they do any work, including
//     jobs waiting in delayed retry, which are caught when their time comes;
//   - an operator or the tenant put the sender on hold (`queue hold`), with or without a lock.
// A held message keeps its queue job body and its blob; it leaves the active queue and is
// re-queued unchanged when released (the lock ends or is lifted, or `queue release`), or deleted
// with its blob by a purge. Holding time does not count against the retry schedule (it counts
// attempts, not days), and a held message never expires: it stays held until released or purged,
// visible in `queue status` and the `outpost_queue_held` gauge, flagged once held longer than the
// queue's lifetime.
//
// Mail Outpost writes to the sender about its mail (DSNs, quarantine reports) is not held: it
// carries the notice identity, which no user can log in as (isRelayNotice), so a locked user is
// still told what happened, while mail a user submits with the null sender is held like any other.
//
// Release and purge claim the rows they work on, so two at once (an unlock while the hold check
// finds the lock ended) never both re-queue a job. A release re-queues before it forgets the held
// row: a crash in between leaves the claim, which goes stale and is released again later; the
// deliver stage drops a job whose attempt is already recorded, so that repeat never delivers twice.
import { isRelayNotice } from './delivery/notice.js';
import { createHash, randomUUID } from 'node:crypto';
import type { LockState, UserLocks } from './locks.js';
import { makeUserLocks, type UserLocksWiring } from './policy/index.js';
import { errorMessage } from './log.js';
import type { BlobStore, Clock, Envelope, Logger, Queue } from './ports.js';
import type { Maybe } from './maybe.js';
import { ConflictError, type MessageLog, type MessageStatus } from './stores.js';

/** Why a message is held: its sender is locked, or was put on hold by hand. */
export type HoldReason = 'locked' | 'manual';

/** The pipeline stage whose queue the job came from and returns to. */
export type HeldStage = 'scan' | 'deliver';

export interface HeldMessage {
  /** One per job: duplicate receives of a job are held once, two jobs of one message twice. */
  id: string;
  messageId: string;
  tenantId: string;
  userId: string;
  identity: string;
  stage: HeldStage;
  /** The queue job body, re-queued unchanged on release. */
  body: string;
  blobKey: string;
  reason: HoldReason;
  heldAt: number;
}

/** A sender put on hold by hand: its mail is held as it comes up, until `queue release`. */
export interface SenderHold {
  userId: string;
  tenantId: string;
  identity: string;
  by: string;
  at: number;
}

/** Held mail of one sender for one reason: for `queue status`, the API and the gauges. */
export interface HeldSummary {
  tenantId: string;
  userId: string;
  identity: string;
  reason: HoldReason;
  count: number;
  oldestAt: number;
  /** Held since before the `overdueBefore` given to `summary`. */
  overdue: number;
}

/** Storage of held messages and of senders on hold (SQLite | DynamoDB). */
export interface HoldStore {
  /** Idempotent on `held.id`; false when that job was held already. */
  add(held: HeldMessage): Promise<boolean>;
  /** Held messages of one sender (or one tenant), oldest first. */
  list(filter: { userId?: string; tenantId?: string; limit?: number }): Promise<HeldMessage[]>;
  /** Senders that have held messages. */
  heldSenders(): Promise<string[]>;
  /**
   * Marks the sender's held messages as taken by `claim` and returns them: those no one claimed,
   * and those whose claim is older than `staleBefore` (a release or purge that died half-way).
   */
  claim(userId: string, claim: string, now: number, staleBefore: number): Promise<HeldMessage[]>;
  /** Forgets a held message, if it is still taken by `claim`. */
  remove(id: string, claim: string): Promise<void>;
  putSenderHold(hold: SenderHold): Promise<void>;
  senderHold(userId: string): Promise<SenderHold | undefined>;
  /** True when there was a hold to remove. */
  removeSenderHold(userId: string): Promise<boolean>;
  summary(filter: { tenantId?: string; userId?: string; overdueBefore: number }): Promise<HeldSummary[]>;
}

/** What the scan and deliver stages ask before they work on a job. */
export interface HoldCheck {
  /** Holds the job when its sender is locked or on hold; true when held (acknowledge it, do nothing else). */
  holdIfSenderStopped(stage: HeldStage, envelope: Envelope, body: string): Promise<boolean>;
}

export interface MailHoldsDeps {
  store: HoldStore;
  queue: Queue;
  blobs: BlobStore;
  log: MessageLog;
  clock: Clock;
  /** The sender's lock now, timed unlocks applied (UserLocks.activeLock). */
  activeLock(userId: string): Maybe<LockState | undefined>;
  logger?: Logger;
}

export const HOLD_STATUS: Record<HoldReason, MessageStatus> = { locked: 'held-locked', manual: 'held-manual' };

/** A claim older than this belongs to a release or purge that died; it is taken over. */
const STALE_CLAIM_MS = 10 * 60_000;

const heldId = (stage: HeldStage, messageId: string, body: string): string =>
  `${messageId}:${stage}:${createHash('sha256').update(body).digest('hex').slice(0, 16)}`;

export class MailHolds implements HoldCheck {
  constructor(private readonly deps: MailHoldsDeps) {}

  async holdIfSenderStopped(stage: HeldStage, envelope: Envelope, body: string): Promise<boolean> {
    // Notices the relay writes itself (DSNs, quarantine reports, forwarded bounces) carry the
    // notice identity, which no user can log in as: a locked user is still told what happened.
    if (isRelayNotice(envelope)) return false;
    const lock = await this.deps.activeLock(envelope.userId);
    const reason: HoldReason | undefined = lock ? 'locked' : (await this.deps.store.senderHold(envelope.userId)) ? 'manual' : undefined;
    if (!reason) return false;
    const held: HeldMessage = {
      id: heldId(stage, envelope.messageId, body),
      messageId: envelope.messageId,
      tenantId: envelope.tenantId,
      userId: envelope.userId,
      identity: envelope.identity,
      stage,
      body,
      blobKey: envelope.blobKey,
      reason,
      heldAt: this.deps.clock.now(),
    };
    const added = await this.deps.store.add(held);
    const detail = { stage, ...(lock ? { lockReasons: lock.reasons.map((item) => item.name), lockedUntil: lock.until } : {}) };
    await this.deps.log.addEvent(envelope.messageId, HOLD_STATUS[reason], detail, HOLD_STATUS[reason]);
    this.deps.logger?.warn('message held', { messageId: envelope.messageId, userId: envelope.userId, identity: envelope.identity, reason, stage, repeat: !added });
    return true;
  }

  /** Puts the sender on hold: its queued mail is held as it comes up, and so is new mail, until `release`. */
  async hold(user: { id: string; tenantId: string; identity: string }, by: string): Promise<{ alreadyOnHold: boolean }> {
    const alreadyOnHold = (await this.deps.store.senderHold(user.id)) !== undefined;
    if (!alreadyOnHold) await this.deps.store.putSenderHold({ userId: user.id, tenantId: user.tenantId, identity: user.identity, by, at: this.deps.clock.now() });
    this.deps.logger?.warn('sender put on hold', { userId: user.id, tenantId: user.tenantId, identity: user.identity, by, alreadyOnHold });
    return { alreadyOnHold };
  }

  /**
   * Takes the sender off hold and re-queues its held mail. Refused while the sender is locked:
   * the mail would only be held again, and a lock (the operator's included) is lifted by unlock,
   * which releases the mail itself.
   */
  async release(user: { id: string; identity: string }, by: string): Promise<{ released: number }> {
    const lock = await this.deps.activeLock(user.id);
    if (lock) {
      throw new ConflictError(`${user.identity} is locked${lock.permanent ? '' : ` until ${new Date(lock.until ?? 0).toISOString()}`}; its held mail is released when the lock is lifted (unlock) or ends`);
    }
    await this.deps.store.removeSenderHold(user.id);
    return { released: await this.requeue(user.id, by) };
  }

  /**
   * Re-queues the sender's held mail if nothing holds it any more (no lock, not on hold): after
   * an unlock, and for each sender with held mail at every hold check (a timed lock that ended).
   */
  async releaseIfFree(userId: string, by: string): Promise<number> {
    if (await this.deps.activeLock(userId)) return 0;
    if (await this.deps.store.senderHold(userId)) return 0;
    return this.requeue(userId, by);
  }

  /** The hold check: releases the mail of every sender whose lock ended. Returns how many messages. */
  async releaseEnded(): Promise<number> {
    let released = 0;
    for (const userId of await this.deps.store.heldSenders()) {
      try {
        released += await this.releaseIfFree(userId, 'lock-ended');
      } catch (error: unknown) {
        this.deps.logger?.error('releasing held mail failed; the next hold check tries again', { userId, error: errorMessage(error) });
      }
    }
    return released;
  }

  /**
   * Deletes the sender's held mail and its blobs (the sender is on hold or locked still, as it
   * was). The sender is not told: purging is what an operator does with a compromised account's
   * spam, and a notice would go to the same account.
   */
  async purge(userId: string, by: string): Promise<{ purged: number }> {
    const now = this.deps.clock.now();
    const claim = randomUUID();
    const held = await this.deps.store.claim(userId, claim, now, now - STALE_CLAIM_MS);
    for (const item of held) {
      // Forgotten before the blob goes: a crash in between leaves a stray blob, never a job without content.
      await this.deps.store.remove(item.id, claim);
      await this.deps.log.addEvent(item.messageId, 'purged', { by, stage: item.stage, reason: item.reason, heldAt: item.heldAt }, 'purged');
      await this.deps.blobs.delete(item.blobKey);
    }
    if (held.length > 0) this.deps.logger?.warn('held mail purged', { userId, by, messages: held.length, messageIds: held.map((item) => item.messageId) });
    return { purged: held.length };
  }

  async onHold(userId: string): Promise<SenderHold | undefined> {
    return this.deps.store.senderHold(userId);
  }

  private async requeue(userId: string, by: string): Promise<number> {
    const now = this.deps.clock.now();
    const claim = randomUUID();
    const held = await this.deps.store.claim(userId, claim, now, now - STALE_CLAIM_MS);
    for (const item of held) {
      // Logged before the job is queued, so that a log that cannot be written (a full disk) stops
      // the release with nothing queued: the row stays claimed, to be taken over once the claim is stale.
      await this.deps.log.addEvent(item.messageId, 'hold-released', { by, stage: item.stage, reason: item.reason, heldForSeconds: Math.round((now - item.heldAt) / 1000) }, 'queued');
      await this.deps.queue.send(item.stage, item.body);
      await this.deps.store.remove(item.id, claim);
    }
    if (held.length > 0) this.deps.logger?.info('held mail released', { userId, by, messages: held.length });
    return held.length;
  }
}

/** The queue's lifetime: the retry schedule's total. Mail held longer is flagged as overdue. */
export function queueLifetimeMs(retrySchedule: readonly number[]): number {
  return retrySchedule.reduce((sum, seconds) => sum + seconds, 0) * 1000;
}

export interface LocksAndHoldsWiring extends UserLocksWiring {
  holdStore: HoldStore;
  queue: Queue;
  blobs: BlobStore;
  log: MessageLog;
}

/**
 * The user locks and the holds together, as every entry needs them: an unlock releases the
 * sender's held mail, and the hold check reads the lock. A failed release after an unlock is
 * logged, not thrown (the user is unlocked by then); the node's hold check retries it.
 */
export function makeLocksAndHolds(wiring: LocksAndHoldsWiring): { locks: UserLocks; holds: MailHolds } {
  const holds = new MailHolds({
    store: wiring.holdStore,
    queue: wiring.queue,
    blobs: wiring.blobs,
    log: wiring.log,
    clock: wiring.clock,
    activeLock: (userId) => locks.activeLock(userId),
    ...(wiring.logger ? { logger: wiring.logger } : {}),
  });
  const locks = makeUserLocks({
    ...wiring,
    afterUnlock: async (userId) => {
      try {
        await holds.releaseIfFree(userId, 'unlock');
      } catch (error: unknown) {
        wiring.logger?.error('releasing held mail after an unlock failed; the hold check retries it', { userId, error: errorMessage(error) });
      }
    },
  });
  return { locks, holds };
}
