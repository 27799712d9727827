// What each Lambda may touch, declared in one place and granted by Storage.grant: a table it
// only reads gets read actions only, a queue it never sends to gets nothing (the queue it
// consumes is granted by its event source), and SES and secrets are granted by delivery mode in
// the stack. API keys, DKIM keys, tenants and users live in the `config` table: only the API
// writes it. BATV keys live there too, in the partition `BATV`: the stages that sign envelope
// senders or check bounces may create and rotate them, and nothing else in `config`.
import type { TableName } from './tables.js';
import type { PipelineQueueName } from './constructs/storage.js';

export type TableAccess = 'read' | 'readWrite';

export interface Access {
  /** Tables by name; `idempotency` is the Powertools idempotency table of the queue consumers. */
  readonly tables: Partial<Record<TableName | 'idempotency', TableAccess>>;
  /** Writes to the `config` table restricted to the BATV key partition (create and rotate keys). */
  readonly batvKeys?: boolean;
  /** The message bucket: read objects, put new ones (notices, reports), delete them. */
  readonly bucket: { readonly read?: boolean; readonly put?: boolean; readonly delete?: boolean };
  /** Queues the function sends to. */
  readonly sendsTo: readonly PipelineQueueName[];
  /** Receives from and deletes in the dead-letter queues (the API's redrive). */
  readonly redrivesDeadLetters?: boolean;
}

export type FunctionName = 'scan' | 'deliver' | 'bounce' | 'housekeeping' | 'api';

export const FUNCTION_ACCESS: Record<FunctionName, Access> = {
  // Reads the message, writes notices to the sender; verdicts feed fingerprints, quarantine, the
  // abuse counters and locks; retries go back to `scan`, clean mail on to `deliver`.
  scan: {
    tables: { config: 'read', messages: 'readWrite', counters: 'readWrite', locks: 'readWrite', quarantine: 'readWrite', fingerprints: 'readWrite', holds: 'readWrite', idempotency: 'readWrite' },
    bucket: { read: true, put: true },
    sendsTo: ['scan', 'deliver'],
  },
  // Signs with DKIM keys (read) and BATV keys (may create the first one); hard bounces feed the
  // suppression list, the abuse counters and locks; retries and DSNs go back to `deliver`.
  deliver: {
    tables: { config: 'read', messages: 'readWrite', counters: 'readWrite', locks: 'readWrite', suppressions: 'readWrite', holds: 'readWrite', idempotency: 'readWrite' },
    batvKeys: true,
    bucket: { read: true, put: true },
    sendsTo: ['deliver'],
  },
  // Reads bounces, attributes them (message log), suppresses recipients, counts hard bounces
  // against the user (locks); forwarded bounces go out through `deliver`.
  bounce: {
    tables: { config: 'read', messages: 'readWrite', counters: 'readWrite', locks: 'readWrite', suppressions: 'readWrite', idempotency: 'readWrite' },
    batvKeys: true,
    bucket: { read: true, put: true },
    sendsTo: ['deliver'],
  },
  // Expires what has expired in every store, and deletes old bounces and quarantined content;
  // held mail past its lifetime is answered with a notice through `deliver`.
  housekeeping: {
    tables: { config: 'read', messages: 'readWrite', counters: 'readWrite', locks: 'readWrite', suppressions: 'readWrite', quarantine: 'readWrite', fingerprints: 'readWrite', holds: 'readWrite', audit: 'readWrite' },
    batvKeys: true,
    bucket: { read: true, put: true, delete: true },
    sendsTo: ['deliver'],
  },
  // Tenants, users, domains, API keys and DKIM keys (config); releases from quarantine and of held
  // mail go to `deliver`; deleting them deletes their content; the operator redrives dead letters.
  api: {
    tables: { config: 'readWrite', messages: 'readWrite', counters: 'readWrite', locks: 'readWrite', suppressions: 'readWrite', quarantine: 'readWrite', holds: 'readWrite', audit: 'readWrite' },
    bucket: { read: true, delete: true },
    sendsTo: ['scan', 'deliver', 'bounce', 'ses-events'],
    redrivesDeadLetters: true,
  },
};
