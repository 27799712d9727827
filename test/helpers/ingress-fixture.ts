// An Ingress on loopback with real SQLite stores in a temporary folder, and a tenant with users.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../core/config.js';
import { hashPassword } from '../../core/identity.js';
import { createLogger } from '../../core/log.js';
import { systemClock } from '../../core/ports.js';
import { SqliteConfigStore } from '../../adapters/local/config-store.js';
import { FsBlobStore } from '../../adapters/local/fs-blob-store.js';
import { SqliteMessageLog } from '../../adapters/local/message-log.js';
import { SqliteQueue } from '../../adapters/local/queue.js';
import { tlsMaterial } from '../../adapters/local/secrets.js';
import { openDatabase, type Db } from '../../adapters/local/sqlite.js';
import { Ingress, type IngressPolicy } from '../../smtp-ec2/ingress.js';

export const PASSWORD = 'correct horse battery';

export interface IngressFixture {
  dir: string;
  config: Config;
  db: Db;
  configStore: SqliteConfigStore;
  queue: SqliteQueue;
  log: SqliteMessageLog;
  blobs: FsBlobStore;
  ingress: Ingress;
  ports: { submission: number; submissions: number };
  tenantId: string;
  close(): Promise<void>;
}

export async function startIngress(options: { config?: Record<string, unknown>; policy?: IngressPolicy } = {}): Promise<IngressFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-ingress-'));
  const config = parseConfig({ dataDir: dir, hostname: 'relay.test', ...options.config });
  const db = openDatabase(join(dir, 'outpost.db'));
  const configStore = new SqliteConfigStore(db);
  const queue = new SqliteQueue(db, { maxReceives: 5 });
  const log = new SqliteMessageLog(db);
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  const tls = await tlsMaterial(dir, 'relay.test', {});
  const ingress = new Ingress({
    config,
    configStore,
    blobs,
    queue,
    log,
    logger: createLogger('ingress', { level: 'error' }),
    clock: systemClock,
    tls,
    policy: options.policy,
  });
  const ports = await ingress.listen('127.0.0.1', { submission: 0, submissions: 0 });
  const tenant = await configStore.createTenant('acme');
  await configStore.addDomain(tenant.id, 'acme.test');
  const hash = await hashPassword(PASSWORD);
  await configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.test', domain: 'acme.test', passwordHash: hash });
  await configStore.createUser({ tenantId: tenant.id, kind: 'domain', identity: 'acme.test', domain: 'acme.test', passwordHash: hash });
  return {
    dir, config, db, configStore, queue, log, blobs, ingress, ports, tenantId: tenant.id,
    async close() {
      await ingress.close();
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
