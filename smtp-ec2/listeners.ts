// The SMTP listeners of an ingress, built alike wherever they run (the single node, the ingress
// task on AWS): the submission ports with the admission policy, the suppression list checked
// before the rate limits reserve anything, and the bounce listener with its BATV keys.
import { bounceTenantsFrom } from '../core/bounce/admission.js';
import type { Check } from '../core/checks/check.js';
import type { Config } from '../core/config.js';
import { createLogger } from '../core/log.js';
import type { MetricRecorder } from '../core/metrics.js';
import type { Clock } from '../core/ports.js';
import type { Stores } from '../core/ports/stores.js';
import { suppressionCheck } from '../core/suppression.js';
import { BounceListener } from './bounce-listener.js';
import { Ingress, type IngressDeps, type IngressPolicy } from './ingress.js';

export interface ListenersOptions {
  config: Config;
  stores: Pick<Stores, 'configStore' | 'blobs' | 'queue' | 'log' | 'stats' | 'suppression' | 'batvKeys' | 'counters'>;
  policy: IngressPolicy;
  clock: Clock;
  tls: { key: Buffer; cert: Buffer };
  metrics?: MetricRecorder;
  /** Called after a message is queued by either listener. */
  onQueued?: (queue: string) => void;
  /** The single node's group commit (see IngressDeps). */
  recordAccepted?: IngressDeps['recordAccepted'];
  recordsContent?: boolean;
  /** See IngressDeps. */
  ipUserLookup?: IngressDeps['ipUserLookup'];
}

export function createListeners(options: ListenersOptions): { ingress: Ingress; bounceListener: BounceListener } {
  const { config, stores, policy, clock, tls, metrics, onQueued, recordAccepted, recordsContent, ipUserLookup } = options;
  const ingress = new Ingress({
    config,
    configStore: stores.configStore,
    blobs: stores.blobs,
    queue: stores.queue,
    log: stores.log,
    logger: createLogger('ingress'),
    clock,
    tls,
    ...(metrics ? { metrics } : {}),
    stats: stores.stats,
    policy: { ...policy, rcptTo: withCheckBefore(policy.rcptTo ?? [], 'rate-limits', suppressionCheck(stores.suppression)) },
    ...(recordAccepted ? { recordAccepted } : {}),
    ...(recordsContent ? { recordsContent } : {}),
    ...(onQueued ? { onQueued } : {}),
    ...(ipUserLookup ? { ipUserLookup } : {}),
  });
  const bounceListener = new BounceListener({
    config,
    blobs: stores.blobs,
    queue: stores.queue,
    logger: createLogger('bounce-listener'),
    clock,
    batvKeys: stores.batvKeys,
    counters: stores.counters,
    tls,
    ...(metrics ? { metrics } : {}),
    ...(onQueued ? { onQueued } : {}),
    tenantFor: bounceTenantsFrom(stores.configStore, config.defaults),
  });
  return { ingress, bounceListener };
}

/** Inserts `check` before the check named `before` (rate limits stay last: they reserve). */
function withCheckBefore<Ctx>(checks: ReadonlyArray<Check<Ctx>>, before: string, check: Check<Ctx>): Array<Check<Ctx>> {
  const index = checks.findIndex((item) => item.name === before);
  return index < 0 ? [...checks, check] : [...checks.slice(0, index), check, ...checks.slice(index)];
}
