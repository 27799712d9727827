// The policy stack every entry builds the same way on its stores: user locks and the mail they
// hold, then the ingress policy (limits, sender rules, auth abuse, IP reputation) on those locks.
// The single node's relay thread and pipeline worker and every AWS entry call this one builder.
import type { Config } from '../config.js';
import { makeLocksAndHolds, type MailHolds } from '../holds.js';
import { createLogger } from '../log.js';
import type { LockEvent, UserLocks } from '../locks.js';
import { makeIngressPolicy, type IngressPolicy } from '../policy/index.js';
import type { Clock, Resolver } from '../ports.js';
import type { Stores } from '../ports/stores.js';

export interface AdmissionPolicy {
  locks: UserLocks;
  holds: MailHolds;
  policy: IngressPolicy;
}

export function makeAdmissionPolicy(input: {
  stores: Pick<Stores, 'holdStore' | 'queue' | 'blobs' | 'log' | 'lockStore' | 'counters' | 'configStore' | 'loginSources'>;
  config: Config;
  clock: Clock;
  resolver: Resolver;
  /** Each lock, timed unlock and manual unlock (metrics). */
  onLockEvent?: (event: LockEvent) => void;
}): AdmissionPolicy {
  const { stores, config, clock, resolver } = input;
  const { locks, holds } = makeLocksAndHolds({
    holdStore: stores.holdStore,
    queue: stores.queue,
    blobs: stores.blobs,
    log: stores.log,
    store: stores.lockStore,
    counters: stores.counters,
    clock,
    configStore: stores.configStore,
    config,
    logger: createLogger('locks'),
    ...(input.onLockEvent ? { onLockEvent: input.onLockEvent } : {}),
  });
  const policy = makeIngressPolicy({ counters: stores.counters, locks, resolver, clock, config, logger: createLogger('policy'), configStore: stores.configStore, loginSources: stores.loginSources });
  return { locks, holds, policy };
}
