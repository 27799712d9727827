// Builds a policy world for check-level tests: in-memory SQLite stores, a manual clock, a fake
// DNS zone, a tenant with one user, and facts objects for each SMTP phase.
import { SqliteConfigStore } from '../../../adapters/local/config-store.js';
import { SqliteCounterStore } from '../../../adapters/local/counter-store.js';
import { SqliteLockStore } from '../../../adapters/local/lock-store.js';
import { SqliteLoginSourceStore } from '../../../adapters/local/login-source-store.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import type { DataFacts, MailFromFacts, RcptToFacts, Sender } from '../../../core/checks/session.js';
import { parseConfig, type Config } from '../../../core/config.js';
import type { OutgoingUser, Tenant } from '../../../core/identity.js';
import type { LockEvent } from '../../../core/locks.js';
import type { Logger } from '../../../core/ports.js';
import { makeIngressPolicy, makeUserLocks } from '../../../core/policy/index.js';
import { effectiveSettings, type SettingOverrides } from '../../../core/settings.js';
import { fakeResolver, type Zone } from '../../helpers/fake-dns.js';
import { manualClock } from '../counters.contract.js';

export const ZONE: Zone = {
  'example.org': { MX: [{ exchange: 'mx.example.org', priority: 10 }] },
  'acme.example': { MX: [{ exchange: 'mx.acme.example', priority: 10 }] },
  'a-only.example': { A: ['192.0.2.10'] },
  'v6-only.example': { AAAA: ['2001:db8::10'] },
  'nullmx.example': { MX: [{ exchange: '', priority: 0 }], A: ['192.0.2.11'] },
  'broken.example': 'SERVFAIL',
  'mx.example.org': { A: ['192.0.2.1'] },
};

export interface World {
  clock: ReturnType<typeof manualClock>;
  config: Config;
  tenant: Tenant;
  user: OutgoingUser;
  lockEvents: LockEvent[];
  logs: Array<{ level: string; message: string; fields?: Record<string, unknown> }>;
  resolver: ReturnType<typeof fakeResolver>;
  counters: SqliteCounterStore;
  locks: ReturnType<typeof makeUserLocks>;
  configStore: SqliteConfigStore;
  policy: ReturnType<typeof makeIngressPolicy>;
  /** The sender as the ingress would resolve it now (effective settings re-read). */
  sender(): Promise<Sender>;
  mailFacts(mailFrom: string, overrides?: Partial<MailFromFacts>): Promise<MailFromFacts>;
  rcptFacts(rcptTo: string, overrides?: Partial<RcptToFacts>): Promise<RcptToFacts>;
  dataFacts(headerFrom: string[], overrides?: Partial<DataFacts>): Promise<DataFacts>;
}

export async function world(options: {
  kind?: 'mailbox' | 'domain' | 'ip';
  identity?: string;
  settings?: SettingOverrides;
  tenantSettings?: SettingOverrides;
  config?: Record<string, unknown>;
  zone?: Zone;
} = {}): Promise<World> {
  const clock = manualClock();
  const db = openDatabase(':memory:');
  const config = parseConfig({ dataDir: '/tmp/outpost-policy-test', ...options.config });
  const configStore = new SqliteConfigStore(db, clock);
  const counters = new SqliteCounterStore(db, clock);
  const lockEvents: LockEvent[] = [];
  const logs: World['logs'] = [];
  const logger: Logger = {
    info: (message, fields) => logs.push({ level: 'info', message, fields }),
    warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
    error: (message, fields) => logs.push({ level: 'error', message, fields }),
    debug: () => undefined,
  };
  const locks = makeUserLocks({ store: new SqliteLockStore(db), counters, clock, configStore, config, logger, onLockEvent: (e) => lockEvents.push(e) });
  const resolver = fakeResolver(options.zone ?? ZONE);
  const tenant = await configStore.createTenant('acme', options.tenantSettings ?? {});
  const kind = options.kind ?? 'mailbox';
  const identity = options.identity ?? (kind === 'mailbox' ? 'alice@acme.example' : kind === 'domain' ? 'acme.example' : '192.0.2.0/24');
  const user = await configStore.createUser({
    tenantId: tenant.id,
    kind,
    identity,
    domain: kind === 'ip' ? null : identity.slice(identity.indexOf('@') + 1),
    passwordHash: null,
    settings: options.settings ?? {},
  });
  const policy = makeIngressPolicy({ counters, locks, resolver, clock, config, logger, configStore, loginSources: new SqliteLoginSourceStore(db) });
  const sender = async (): Promise<Sender> => {
    const currentTenant = (await configStore.getTenant(tenant.id)) ?? tenant;
    const currentUser = (await configStore.getUser(user.id)) ?? user;
    return {
      user: currentUser,
      tenant: currentTenant,
      settings: effectiveSettings(currentUser.settings, currentTenant.settings, config.defaults),
      via: kind === 'ip' ? 'ip' : 'auth',
    };
  };
  const mailFacts = async (mailFrom: string, overrides: Partial<MailFromFacts> = {}): Promise<MailFromFacts> => ({
    sessionId: 'session-1',
    clientIp: kind === 'ip' ? '192.0.2.7' : '198.51.100.7',
    listener: 'submission',
    now: clock.now(),
    helo: 'client.example',
    secure: true,
    sender: await sender(),
    mailFrom,
    declaredSize: undefined,
    ...overrides,
  });
  return {
    clock,
    config,
    tenant,
    user,
    lockEvents,
    logs,
    resolver,
    counters,
    locks,
    configStore,
    policy,
    sender,
    mailFacts,
    rcptFacts: async (rcptTo, overrides = {}) => ({ ...(await mailFacts('alice@acme.example')), rcptTo, acceptedRcpts: [], ...overrides }),
    dataFacts: async (headerFrom, overrides = {}) => ({
      ...(await mailFacts('alice@acme.example')),
      rcptTo: ['bob@example.org'],
      size: 1000,
      headerFrom,
      ...overrides,
    }),
  };
}
