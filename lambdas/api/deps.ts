// What the API needs from the deployment. The single node passes SQLite stores
// (adapters/local); the Lambda passes DynamoDB ones. Optional ports may be left out: their routes
// then answer 501.
import type { Context } from 'hono';
import type { ApiKeyStore } from '../../core/api/api-keys.js';
import type { AuditLog } from '../../core/audit.js';
import type { MessageStats } from '../../core/api/stats.js';
import type { DkimKeyStore } from '../../core/dkim/keys.js';
import type { EmailIdentities } from '../../core/ports/email-identities.js';
import type { HoldStore, MailHolds } from '../../core/holds.js';
import type { UserLocks } from '../../core/locks.js';
import type { BlobStore, Clock, DeadLetterQueues, Logger, Queue, Resolver } from '../../core/ports.js';
import type { QuarantineStore } from '../../core/scan/quarantine.js';
import type { SettingOverrides } from '../../core/settings.js';
import type { SuppressionList } from '../../core/suppression.js';
import type { ConfigStore, MessageLog } from '../../core/stores.js';

export interface ApiDeps {
  /** OUTPOST_OPERATOR_TOKEN; when empty or absent, no operator access is possible. */
  operatorToken: string | undefined;
  configStore: ConfigStore;
  messageLog: MessageLog;
  apiKeys: ApiKeyStore;
  stats: MessageStats;
  clock: Clock;
  logger?: Logger;
  /** Deployment defaults of the settings (config `defaults`), for effective settings. */
  defaults?: SettingOverrides;
  locks?: UserLocks;
  /** Held mail of locked or held senders: hold, release, purge (with `locks`). */
  holds?: { holds: MailHolds; store: HoldStore; queueLifetimeMs: number };
  dkimKeys?: DkimKeyStore;
  /** The sending provider's identities (SES in `ses` delivery mode): verified domains are registered there. */
  emailIdentities?: EmailIdentities;
  suppression?: SuppressionList;
  /** Held messages; releasing one queues it for delivery, deleting one deletes its blob. */
  quarantine?: { store: QuarantineStore; blobs: BlobStore; queue: Queue };
  /** Dead-letter queues the operator may redrive (POST /v1/queues/{queue}/redrive). */
  deadLetters?: DeadLetterQueues;
  /** Looks up the TXT records that prove a tenant's pending domain. */
  resolver?: Resolver;
  /** The relay's host name (config `hostname`): tenants may not claim it or its registrable domain. */
  relayHostname?: string;
  /** Who changed what; every change made through the API is recorded when given. */
  audit?: AuditLog;
  /** Failed token checks allowed per client IP within the window before 429 (default 10 per minute). */
  authFailures?: { max: number; windowMs: number };
  /** The client IP; by default from the node server's socket or API Gateway's request context. */
  clientIp?: (c: Context) => string | undefined;
  /** Origins allowed to call the API from a browser (a panel hosted elsewhere); none by default. */
  corsOrigins?: string[];
  /** Tests: check every response body against its documented schema (a mismatch is a 500). */
  checkResponses?: boolean;
}
