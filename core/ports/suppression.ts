// A tenant's suppression list: recipients that hard-bounced (expiring) and manual entries.
// DynamoDB on AWS (adapters/aws/dynamodb-suppression-list.ts), SQLite on the single node
// (adapters/local/suppression-store.ts). Contract: test/core/suppression-list.contract.ts.
//
// Promises every implementation keeps:
// - one entry per (tenant, address); lists of tenants never mix;
// - addresses match with the domain case-insensitive and the local part as given
//   (`normaliseSuppressedAddress`); what is not an address is refused on add and found nowhere;
// - an entry is in force until its expiry (null: until removed); reads ignore expired entries;
// - a hard bounce refreshes an earlier bounce's expiry but never shortens a permanent manual entry;
// - `list` is newest first; `purgeExpired` deletes only expired entries.

import type { Maybe } from '../maybe.js';
export type SuppressionSource = 'bounce' | 'manual';

export interface SuppressionEntry {
  tenantId: string;
  /** Normalised: domain lower-cased, local part as given. */
  address: string;
  source: SuppressionSource;
  reason: string;
  createdAt: number;
  /** null: until removed. */
  expiresAt: number | null;
}

export interface SuppressionList {
  /** Adds or refreshes an entry (a new hard bounce restarts the expiry). */
  add(entry: { tenantId: string; address: string; source: SuppressionSource; reason: string; expiresAt?: number | null }): Promise<SuppressionEntry>;
  /** True when an entry was removed. */
  remove(tenantId: string, address: string): Promise<boolean>;
  /** Entries in force at `now`, newest first. */
  list(tenantId: string, now: number): Promise<SuppressionEntry[]>;
  /** The entry in force for this recipient at `now`, if any. */
  /** A Maybe (core/maybe.ts): a list kept in memory answers at once (it is asked at every RCPT). */
  find(tenantId: string, address: string, now: number): Maybe<SuppressionEntry | undefined>;
  /** Deletes entries that expired before `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}
