// Every store of one deployment, opened together: the single node's SQLite and filesystem
// (bin/local-stores.ts) and AWS's DynamoDB, S3, SQS and KMS (lambdas/aws-stores.ts) both give
// this, so that whatever runs on stores (the pipeline, the API, housekeeping, the gauges) runs on
// either. What only one backend has (the SQLite handle for backups and migrations, the SQLite
// queue's crash recovery) stays in that backend's wiring, never here.
//
// Promises every implementation keeps: each member keeps the promises of its port (one file each
// in core/ports/); they share one clock; `close` releases what the bundle opened (a database, SDK
// clients) and is safe to call once the work on them is done.
import type { AuditLog } from './audit.js';
import type { ApiKeyStore } from './api-keys.js';
import type { BatvKeyStore } from './batv-keys.js';
import type { BlobStore } from './blob-store.js';
import type { ConfigStore } from './config-store.js';
import type { CounterStore } from './counters.js';
import type { DkimKeyStore } from './dkim-keys.js';
import type { FingerprintStore } from './fingerprints.js';
import type { HoldStore } from './holds.js';
import type { LockStore } from './locks.js';
import type { LoginSourceStore } from './login-sources.js';
import type { MessageLog } from './message-log.js';
import type { QuarantineStore } from './quarantine.js';
import type { DeadLetterQueues, Queue } from './queue.js';
import type { MessageStats } from './statistics.js';
import type { SuppressionList } from './suppression.js';
import type { Clock } from '../ports.js';

export interface Stores {
  clock: Clock;
  configStore: ConfigStore;
  log: MessageLog;
  queue: Queue & DeadLetterQueues;
  blobs: BlobStore;
  counters: CounterStore;
  lockStore: LockStore;
  holdStore: HoldStore;
  loginSources: LoginSourceStore;
  fingerprints: FingerprintStore;
  quarantine: QuarantineStore;
  dkimKeys: DkimKeyStore;
  batvKeys: BatvKeyStore;
  suppression: SuppressionList;
  apiKeys: ApiKeyStore;
  stats: MessageStats;
  audit: AuditLog;
  close(): void;
}
