// Automatic locks as the `LocksApplied` metric, which the "lock spike" alarm sums over the
// entries that lock users (ingress, scan, deliver, bounce). Locks are applied deep inside the
// use cases (core/locks.ts, through the policy's abuse counters), so the entry does not see them
// happen: it hands this listener to the UserLocks it builds (`onLockEvent` of `makeUserLocks`),
// and each new lock is counted once, as it is stored, with tenant and user as metadata.
import type { LockEvent } from '../core/locks.js';
import type { EntryMetrics } from './aws-stores.js';

/** The `onLockEvent` of an entry's UserLocks: counts locks, not the unlocks that also pass by. */
export function lockEventMetrics(metrics: EntryMetrics): (event: LockEvent) => void {
  return (event) => {
    if (event.kind === 'lock') metrics.locked(event.userId, event.tenantId);
  };
}
