// The gauges of the single node's /metrics that are read from its stores at scrape time: queue
// depths, message outcomes from the log, held mail, locks, and the sessions open now.
import type { Metrics } from '../core/metrics.js';
import type { Stores } from '../core/ports/stores.js';

export async function collectGauges(metrics: Metrics, stores: Stores, activeSessions: number, queueLifetime: number): Promise<void> {
  metrics.set('outpost_smtp_sessions_active', {}, activeSessions);
  for (const name of ['scan', 'deliver', 'bounce']) {
    for (const queue of [name, `${name}-dlq`]) {
      const depth = await stores.queue.depth(queue);
      metrics.set('outpost_queue_messages', { queue, state: 'visible' }, depth.visible);
      metrics.set('outpost_queue_messages', { queue, state: 'in_flight' }, depth.inFlight);
      metrics.set('outpost_queue_messages', { queue, state: 'delayed' }, depth.delayed);
    }
    const dead = await stores.queue.depth(`${name}-dlq`);
    metrics.set('outpost_dead_letter_messages', { queue: name }, dead.visible + dead.inFlight + dead.delayed);
  }
  for (const [event, n] of Object.entries(await stores.log.eventCounts())) metrics.set('outpost_message_events', { event }, n);
  const held = await stores.holdStore.summary({ overdueBefore: stores.clock.now() - queueLifetime });
  for (const reason of ['locked', 'manual'] as const) {
    const ofReason = held.filter((item) => item.reason === reason);
    metrics.set('outpost_queue_held', { reason }, ofReason.reduce((sum, item) => sum + item.count, 0));
    metrics.set('outpost_queue_held_overdue', { reason }, ofReason.reduce((sum, item) => sum + item.overdue, 0));
  }
  const locked = await stores.lockStore.listLocked({});
  metrics.set('outpost_locked_users', { kind: 'temporary' }, locked.filter((l) => !l.permanent).length);
  metrics.set('outpost_locked_users', { kind: 'permanent' }, locked.filter((l) => l.permanent).length);
}
