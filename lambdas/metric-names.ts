// Names of the CloudWatch metrics the entries publish as EMF (namespace `Outpost`, dimension
// `service` = the entry's name). The CDK app's alarms and dashboard read the same constants.
export const METRICS_NAMESPACE = 'Outpost';

export const METRIC = {
  /** Records of a batch that failed and will be retried (scan: the message stays unscanned). */
  recordFailures: 'RecordFailures',
  /** Scans that failed (engine down, timeout): the message waits, undelivered. */
  scanFailures: 'ScanFailures',
  /** Outgoing users locked (automatic locks after abuse). */
  locksApplied: 'LocksApplied',
  messagesScanned: 'MessagesScanned',
  messagesDelivered: 'MessagesDelivered',
  bouncesHandled: 'BouncesHandled',
  /** SMTP sessions open in one ingress task (published by the ingress). */
  activeSessions: 'ActiveSessions',
} as const;
