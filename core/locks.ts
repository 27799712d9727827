// User locks: the one place where abuse turns into a lock. Spam and virus verdicts, the invalid
// recipient limit, repeated limit violations and brute force all call `lockAfterAbuse`.
//
// Lifecycle (settings of the locked user): an automatic lock lasts `lockMinutes`; when it ends it
// is lifted by timeout and the timeout unlock is counted. Once `maxTimedUnlocks` timeout unlocks
// have been used up, the next automatic lock is permanent: only `unlock` (an operator or the
// tenant) lifts it. `unlock` resets the count of timeout unlocks to 0 and calls `onUnlock`, which
// the policy uses to forget the counters that caused the lock (invalid recipients, limit
// violations, auth failures of the user), or the user would be locked again at once.
// A timeout unlock is applied when the lock is next read (status, lock, list), and dated at the
// moment the lock ended, not the moment it was noticed.
import type { Symbol } from './checks/check.js';
import type { OutgoingUser } from './identity.js';
import { attempt, andThen, type Maybe } from './maybe.js';
import type { Clock, Logger } from './ports.js';
import type { SettingOverrides, UserSettings } from './settings.js';
import { userSettings, type ConfigStore } from './stores.js';

export interface LockState {
  userId: string;
  tenantId: string;
  identity: string;
  locked: boolean;
  /** Lifted only by `unlock`. */
  permanent: boolean;
  lockedAt: number | null;
  /** When a temporary lock ends; null when permanent or unlocked. */
  until: number | null;
  /** Why the current (or last) lock was set: named symbols with evidence. */
  reasons: Symbol[];
  /** Timeout unlocks since the last manual unlock. */
  timedUnlocks: number;
  /**
   * Who locked by hand: a lock placed by the operator is lifted only by the operator; null for an
   * automatic lock (abuse), which the tenant may lift.
   */
  placedBy: LockPlacer | null;
  /** Optimistic concurrency: bumped on every write. 0 = never stored. */
  version: number;
}

export type LockPlacer = 'operator' | 'tenant';

export type LockEventKind = 'lock' | 'timed-unlock' | 'manual-unlock';

export interface LockEvent {
  kind: LockEventKind;
  userId: string;
  tenantId: string;
  identity: string;
  at: number;
  reasons?: Symbol[];
  until?: number | null;
  permanent?: boolean;
  timedUnlocks: number;
  /** Who unlocked (manual unlock): e.g. "operator", "tenant:acme". */
  by?: string;
  reason?: string;
}

/** Storage of lock states and their history (SQLite | DynamoDB). */
export interface LockStore {
  /** A Maybe (core/maybe.ts): a store that keeps locks in memory answers at once. */
  read(userId: string): Maybe<LockState | undefined>;
  /**
   * Stores `next` and appends `events` in one atomic step, only if the stored version is still
   * `expectedVersion` (0: no row yet). Returns false when someone else wrote first.
   */
  write(next: LockState, expectedVersion: number, events: LockEvent[]): Promise<boolean>;
  /** Every lock event of the user, oldest first. */
  history(userId: string): Promise<LockEvent[]>;
  /** Stored states that are locked (possibly expired, not yet lifted), optionally of one tenant. */
  listLocked(filter: { tenantId?: string }): Promise<LockState[]>;
}

export type LockOutcome =
  | { locked: true; state: LockState; alreadyLocked: boolean }
  | { locked: false; reason: 'autoLock-off' | 'unknown-user' };

export interface UserLocksDeps {
  store: LockStore;
  clock: Clock;
  configStore: ConfigStore;
  /** Deployment defaults of the settings (config `defaults`). */
  defaults?: SettingOverrides;
  /** Notified of every lock, timeout unlock and manual unlock (notifications, metrics). */
  onLockEvent?: (event: LockEvent) => void;
  /** Called after a manual unlock, to forget the counters that caused the lock. */
  onUnlock?: (userId: string) => Promise<void>;
  logger?: Logger;
}

const MAX_WRITE_ATTEMPTS = 8;

export class UserLocks {
  constructor(private readonly deps: UserLocksDeps) {}

  /** The user's lock state now (timeout unlocks applied), or undefined if never locked. */
  async status(userId: string): Promise<LockState | undefined> {
    return this.update(userId, (state) => (state ? this.expire(state) : undefined));
  }

  /**
   * Whether the user is locked now; the state when it is. Asked at every MAIL and RCPT: when the
   * store answers at once and no timed unlock is due, so does this (core/maybe.ts); a timed unlock
   * to apply is written first, as `status` does.
   */
  activeLock(userId: string): Maybe<LockState | undefined> {
    return andThen(attempt(() => this.deps.store.read(userId)), (stored) => {
      if (stored && this.expire(stored).events.length > 0) return this.status(userId).then((state) => (state?.locked ? state : undefined));
      return stored?.locked ? stored : undefined;
    });
  }

  /**
   * Locks the user for `lockMinutes` (or permanently once the timeout unlocks are used up), if
   * its `autoLock` setting is on. An already locked user stays locked as it is.
   */
  async lockAfterAbuse(user: OutgoingUser | string, reasons: Symbol[], settings?: UserSettings, placedBy: LockPlacer | null = null): Promise<LockOutcome> {
    const found = typeof user === 'string' ? await this.deps.configStore.getUser(user) : user;
    if (!found) return { locked: false, reason: 'unknown-user' };
    const effective = settings ?? (await this.settingsOf(found));
    if (!effective.autoLock) {
      this.deps.logger?.info('abuse detected, autoLock off: not locking', { userId: found.id, reasons: reasons.map((r) => r.name) });
      return { locked: false, reason: 'autoLock-off' };
    }
    let alreadyLocked = false;
    const state = await this.update(found.id, (current) => {
      const base = current ? this.expire(current) : this.fresh(found);
      if (base.state.locked) {
        alreadyLocked = true;
        // The operator's lock takes over a lock that is already there: the operator's word stands.
        if (placedBy === 'operator' && base.state.placedBy !== 'operator') {
          const now = this.deps.clock.now();
          const permanent = effective.maxTimedUnlocks === 0 || base.state.permanent;
          const until = permanent ? null : now + effective.lockMinutes * 60_000;
          const next: LockState = { ...base.state, placedBy, permanent, until, reasons: [...reasons, ...base.state.reasons] };
          const event: LockEvent = { kind: 'lock', userId: next.userId, tenantId: next.tenantId, identity: next.identity, at: now, reasons, until, permanent, timedUnlocks: next.timedUnlocks };
          return { state: next, events: [...base.events, event] };
        }
        return base;
      }
      const now = this.deps.clock.now();
      const permanent = base.state.timedUnlocks >= effective.maxTimedUnlocks;
      const until = permanent ? null : now + effective.lockMinutes * 60_000;
      const next: LockState = { ...base.state, locked: true, permanent, lockedAt: now, until, reasons, placedBy };
      const event: LockEvent = {
        kind: 'lock',
        userId: next.userId,
        tenantId: next.tenantId,
        identity: next.identity,
        at: now,
        reasons,
        until,
        permanent,
        timedUnlocks: next.timedUnlocks,
      };
      return { state: next, events: [...base.events, event] };
    });
    if (!state) return { locked: false, reason: 'unknown-user' };
    return { locked: true, state, alreadyLocked };
  }

  /** Lifts any lock (temporary or permanent), resets the timeout-unlock count and the abuse counters. */
  async unlock(userId: string, by: string, reason: string): Promise<LockState> {
    const user = await this.deps.configStore.getUser(userId);
    const state = await this.update(userId, (current) => {
      const base = current ? this.expire(current) : user ? this.fresh(user) : undefined;
      if (!base) return undefined;
      const now = this.deps.clock.now();
      const next: LockState = { ...base.state, locked: false, permanent: false, until: null, timedUnlocks: 0, placedBy: null };
      const event: LockEvent = {
        kind: 'manual-unlock',
        userId: next.userId,
        tenantId: next.tenantId,
        identity: next.identity,
        at: now,
        timedUnlocks: 0,
        by,
        reason,
      };
      return { state: next, events: [...base.events, event] };
    });
    if (!state) throw new Error(`no user with id ${userId}; list users with \`npx outpost user list\``);
    await this.deps.onUnlock?.(userId);
    return state;
  }

  /** Users locked now, optionally of one tenant (timeout unlocks applied first). */
  async listLocks(filter: { tenantId?: string } = {}): Promise<LockState[]> {
    const stored = await this.deps.store.listLocked(filter);
    const current = await Promise.all(stored.map((state) => this.status(state.userId)));
    return current.filter((state): state is LockState => state?.locked === true);
  }

  async history(userId: string): Promise<LockEvent[]> {
    return this.deps.store.history(userId);
  }

  private settingsOf(user: OutgoingUser): Promise<UserSettings> {
    return userSettings(this.deps.configStore, user, this.deps.defaults);
  }

  private fresh(user: OutgoingUser): { state: LockState; events: LockEvent[] } {
    return {
      state: {
        userId: user.id,
        tenantId: user.tenantId,
        identity: user.identity,
        locked: false,
        permanent: false,
        lockedAt: null,
        until: null,
        reasons: [],
        timedUnlocks: 0,
        placedBy: null,
        version: 0,
      },
      events: [],
    };
  }

  /** Lifts a temporary lock whose time is over, counting the timeout unlock. */
  private expire(state: LockState): { state: LockState; events: LockEvent[] } {
    if (!state.locked || state.permanent || state.until === null || state.until > this.deps.clock.now()) {
      return { state, events: [] };
    }
    const next: LockState = { ...state, locked: false, until: null, timedUnlocks: state.timedUnlocks + 1, placedBy: null };
    const event: LockEvent = {
      kind: 'timed-unlock',
      userId: state.userId,
      tenantId: state.tenantId,
      identity: state.identity,
      at: state.until,
      reasons: state.reasons,
      timedUnlocks: next.timedUnlocks,
    };
    return { state: next, events: [event] };
  }

  /** Read-modify-write with optimistic concurrency; emits the events once written. */
  private async update(
    userId: string,
    change: (current: LockState | undefined) => { state: LockState; events: LockEvent[] } | undefined,
  ): Promise<LockState | undefined> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await this.deps.store.read(userId);
      const result = change(current);
      if (!result) return current;
      if (result.events.length === 0) return result.state;
      const expected = current?.version ?? 0;
      const next = { ...result.state, version: expected + 1 };
      if (await this.deps.store.write(next, expected, result.events)) {
        for (const event of result.events) this.emit(event);
        return next;
      }
    }
    throw new Error(`lock state of user ${userId} kept changing under concurrent writers; try again`);
  }

  private emit(event: LockEvent): void {
    this.deps.logger?.info('user lock event', {
      event: event.kind,
      userId: event.userId,
      tenantId: event.tenantId,
      identity: event.identity,
      at: new Date(event.at).toISOString(),
      until: event.until === undefined || event.until === null ? event.until : new Date(event.until).toISOString(),
      permanent: event.permanent,
      timedUnlocks: event.timedUnlocks,
      reasons: event.reasons,
      by: event.by,
      reason: event.reason,
    });
    try {
      this.deps.onLockEvent?.(event);
    } catch (error: unknown) {
      this.deps.logger?.error('onLockEvent listener failed', { error: error instanceof Error ? error.message : String(error) });
    }
  }
}
