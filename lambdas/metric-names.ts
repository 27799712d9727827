// Names of the CloudWatch metrics the entries publish as EMF (namespace `Outpost`, dimension
// `service` = the entry's name). The CDK app's alarms and dashboard read the same constants.
// They come from the one table of metrics (core/metric-names.ts) that the single node's
// /metrics uses too; emfName() says how a Prometheus name becomes a CloudWatch one.
import { emfName } from '../core/metric-names.js';

export const METRICS_NAMESPACE = 'Outpost';

export const METRIC = {
  /** Records of a batch that failed and will be retried (scan: the message stays unscanned). */
  recordFailures: emfName('outpost_record_failures_total'),
  /** Scans that failed (engine down, timeout): the message waits, undelivered. */
  scanFailures: emfName('outpost_scan_failures_total'),
  /** Outgoing users locked (automatic locks after abuse). */
  locksApplied: emfName('outpost_locks_applied_total'),
  messagesScanned: emfName('outpost_messages_scanned_total'),
  messagesDelivered: emfName('outpost_messages_delivered_total'),
  bouncesHandled: emfName('outpost_bounces_handled_total'),
  /** SMTP sessions open in one ingress task (published by the ingress). */
  activeSessions: emfName('outpost_smtp_sessions_active'),
} as const;
