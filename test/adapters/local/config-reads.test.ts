// The relay thread's reads of users, tenants, domains and locks are kept in memory until any
// connection changes those tables (config_generation, moved on by triggers). Proved on a real
// node: a second connection to the same database (as the CLI opens one, or the pipeline thread)
// suspends a tenant, moves a domain, changes a user's settings or locks a user, and the very next
// SMTP command sees it; and on the stores: unchanged configuration is read from memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigReadCache, cachedConfigReads, cachedLockReads, cachedSuppressionReads } from '../../../adapters/local/config-reads.js';
import { sqliteHandleForTests, openLocalStores, type LocalStores } from '../../../bin/local-stores.js';
import { parseConfig } from '../../../core/config.js';
import { openDatabase } from '../../../adapters/local/sqlite.js';
import type { Tenant } from '../../../core/identity.js';
import { makeLocksAndHolds } from '../../../core/holds.js';
import { runChecks } from '../../../core/checks/check.js';
import type { RcptToFacts } from '../../../core/checks/session.js';
import { suppressionCheck } from '../../../core/suppression.js';
import { parseReply, rawMessage, rawSession, rawTransaction, startE2eNode, tryEnvelope, type E2eNode } from '../../helpers/e2e-node.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('the relay sees every change to its configuration at its next command', () => {
  let e2e: E2eNode;
  /** A second connection to the node's database, as the CLI opens one. */
  let cli: LocalStores;
  let acme: Tenant;

  beforeAll(async () => {
    e2e = await startE2eNode();
    acme = await e2e.tenant('acme', ['acme.test', 'globex.test'], { mailsPerMinute: 1000, mailsPerHour: 1000 });
    await e2e.user(acme, 'alice@acme.test');
    await e2e.user(acme, 'bob@globex.test');
    cli = openLocalStores(parseConfig({ dataDir: e2e.dataDir }));
  }, 30_000);

  afterAll(async () => {
    cli?.close();
    await e2e?.stop();
  });

  /** MAIL FROM and one RCPT TO in one session, each answer as "code enhanced". */
  async function envelope(from: string): Promise<{ mail: string; rcpt: string }> {
    const { mail, rcpts } = await tryEnvelope(e2e.node.ports.submission, from, ['someone@example.org']);
    const code = (reply: string | undefined) => {
      const parsed = parseReply(reply ?? '');
      return `${parsed.code} ${parsed.enhanced}`;
    };
    return { mail: code(mail), rcpt: code(rcpts[0]) };
  }

  it('a tenant suspended and reinstated from another connection', async () => {
    expect(await envelope('alice@acme.test')).toEqual({ mail: '250 2.1.0', rcpt: '250 2.1.5' });
    await cli.configStore.updateTenant(acme.id, { suspended: true });
    expect((await envelope('alice@acme.test')).mail).toBe('550 5.7.1');
    await cli.configStore.updateTenant(acme.id, { suspended: false });
    expect((await envelope('alice@acme.test')).mail).toBe('250 2.1.0');
  });

  it('a domain moved to another tenant, then given back', async () => {
    const rival = await cli.configStore.createTenant('rival');
    const { smtp } = await rawSession(e2e.node.ports.submission, 'bob@globex.test');
    try {
      const send = async (subject: string) => (await rawTransaction(smtp, { mailFrom: 'bob@globex.test', rcptTo: ['someone@example.org'], message: rawMessage('bob@globex.test', 'someone@example.org', subject) })).mail;
      expect(parseReply(await send('before')).code).toBe(250);
      await cli.configStore.removeDomain(acme.id, 'globex.test');
      await cli.configStore.addDomain(rival.id, 'globex.test');
      // The same session, the next transaction: the sender's domain is another tenant's now.
      expect(parseReply(await send('after'))).toMatchObject({ code: 550, enhanced: '5.7.1' });
      await cli.configStore.removeDomain(rival.id, 'globex.test');
      await cli.configStore.addDomain(acme.id, 'globex.test');
      expect(parseReply(await send('again')).code).toBe(250);
    } finally {
      smtp.close();
    }
  });

  it("a user's settings changed from another connection", async () => {
    const alice = await cli.configStore.findUserByLogin('alice@acme.test');
    if (!alice) throw new Error('alice is missing');
    const declaring = async () => {
      const { smtp } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
      try {
        return parseReply((await rawTransaction(smtp, { mailFrom: 'alice@acme.test', rcptTo: [], mailParams: 'SIZE=5000' })).mail);
      } finally {
        smtp.close();
      }
    };
    expect((await declaring()).code).toBe(250);
    await cli.configStore.updateUser(alice.id, { settings: { maxMessageBytes: 1000 } });
    expect(await declaring()).toMatchObject({ code: 552, enhanced: '5.3.4' });
    await cli.configStore.updateUser(alice.id, { settings: {} });
    expect((await declaring()).code).toBe(250);
  });

  it('a user locked from another connection (as the pipeline locks one) is refused at once', async () => {
    const alice = await cli.configStore.findUserByLogin('alice@acme.test');
    if (!alice) throw new Error('alice is missing');
    expect((await envelope('alice@acme.test')).mail).toBe('250 2.1.0');
    const { locks } = makeLocksAndHolds({ ...cli, store: cli.lockStore, clock: cli.clock, config: parseConfig({ dataDir: e2e.dataDir }) });
    await locks.lockAfterAbuse(alice, [{ name: 'TEST_ABUSE' }]);
    expect((await envelope('alice@acme.test')).mail).toBe('550 5.7.1');
    await locks.unlock(alice.id, 'test', 'test over');
    expect((await envelope('alice@acme.test')).mail).toBe('250 2.1.0');
  });

  it('an IP user removed and added again from another connection: at the next MAIL FROM, not seconds later', async () => {
    const relay = await cli.configStore.createUser({ tenantId: acme.id, kind: 'ip', identity: '127.0.0.1', domain: null, passwordHash: null });
    const { smtp } = await rawSession(e2e.node.ports.submission);
    try {
      const mail = async () => {
        const reply = parseReply(await smtp.command('MAIL FROM:<app@acme.test>'));
        await smtp.command('RSET');
        return `${reply.code} ${reply.enhanced}`;
      };
      expect(await mail()).toBe('250 2.1.0');
      await cli.configStore.deleteUser(relay.id);
      expect(await mail()).toBe('530 5.7.0');
      const again = await cli.configStore.createUser({ tenantId: acme.id, kind: 'ip', identity: '127.0.0.1', domain: null, passwordHash: null });
      expect(await mail()).toBe('250 2.1.0');
      await cli.configStore.deleteUser(again.id);
      expect(await mail()).toBe('530 5.7.0');
    } finally {
      smtp.close();
    }
  });
});

describe('ConfigReadCache', () => {
  let stores: LocalStores;
  let other: LocalStores;
  let dataDir: string;

  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    dataDir = await mkdtemp(join(tmpdir(), 'outpost-config-reads-'));
    stores = openLocalStores(parseConfig({ dataDir }));
    other = openLocalStores(parseConfig({ dataDir }));
  });

  afterAll(() => {
    other?.close();
    stores?.close();
  });

  /** The store, counting the reads that reach it. */
  function counted(): { reads: () => number; store: LocalStores['configStore'] } {
    let reads = 0;
    const store = stores.configStore;
    const counting = Object.assign(Object.create(store) as typeof store, {
      getTenant: (id: string) => {
        reads += 1;
        return store.getTenant(id);
      },
    });
    return { reads: () => reads, store: counting };
  }

  it('reads unchanged configuration from memory, and again after any change, on any connection', async () => {
    const tenant = await stores.configStore.createTenant('kept');
    const { reads, store } = counted();
    const cached = cachedConfigReads(store, new ConfigReadCache(sqliteHandleForTests(stores)));
    for (let turn = 0; turn < 3; turn++) {
      expect((await cached.getTenant(tenant.id))?.suspended).toBe(false);
      await nextTurn();
    }
    expect(reads()).toBe(1);
    await other.configStore.updateTenant(tenant.id, { suspended: true });
    await nextTurn();
    expect((await cached.getTenant(tenant.id))?.suspended).toBe(true);
    expect(reads()).toBe(2);
    // A change to another table of the configuration drops what is kept too.
    await other.configStore.addDomain(tenant.id, 'kept.test');
    await nextTurn();
    await cached.getTenant(tenant.id);
    expect(reads()).toBe(3);
  });

  it('reads both generations in one statement at most once per turn for every cache on the connection, and again after a write through one of them', async () => {
    const db = openDatabase(':memory:');
    try {
      let generationReads = 0;
      const prepare = db.prepare.bind(db);
      db.prepare = ((source: string) => {
        if (source.includes('_generation')) generationReads += 1;
        return prepare(source);
      }) as typeof db.prepare;
      const config = new ConfigReadCache(db);
      const counters = new ConfigReadCache(db, 'counter_generation');
      const loads = { config: 0, counters: 0 };
      const loadConfig = async () => (loads.config += 1);
      const loadCounters = async () => (loads.counters += 1);
      for (let turn = 1; turn <= 3; turn++) {
        await config.read('tenant', loadConfig);
        await counters.read('bucket', loadCounters);
        await config.read('user', loadConfig);
        expect(generationReads).toBe(turn);
        await nextTurn();
      }
      expect(loads).toEqual({ config: 2, counters: 1 });

      // Each cache follows its own table: the counters' move drops only what the counters' cache keeps.
      db.exec('UPDATE counter_generation SET n = n + 1 WHERE id = 1');
      await nextTurn();
      await config.read('tenant', loadConfig);
      await counters.read('bucket', loadCounters);
      expect(loads).toEqual({ config: 2, counters: 2 });

      // A write through a cache, then in the same turn another change: read again at once, and seen.
      config.invalidate();
      db.exec('UPDATE config_generation SET n = n + 1 WHERE id = 1');
      await config.read('tenant', loadConfig);
      expect(generationReads).toBe(5);
      expect(loads).toEqual({ config: 3, counters: 2 });
    } finally {
      db.close();
    }
  });

  it('fails the read, serves nothing it kept and keeps nothing while the generation cannot be read, and reads again once it can', async () => {
    const db = openDatabase(':memory:');
    try {
      const cache = new ConfigReadCache(db);
      const counters = new ConfigReadCache(db, 'counter_generation');
      let loads = 0;
      const load = async () => `value ${(loads += 1)}`;
      expect(await cache.read('key', load)).toBe('value 1');
      expect(await counters.read('bucket', load)).toBe('value 2');
      await nextTurn();
      // The database fails under the cache (here its generation table is gone; a disk error alike).
      db.exec('ALTER TABLE config_generation RENAME TO config_generation_away');
      // A rejected promise, as the stores' reads fail, not an exception thrown at the caller.
      const failing = cache.read('key', load);
      await expect(failing).rejects.toThrow(/config_generation/);
      // Again in the same turn: what was kept before is not served unchecked.
      await expect(cache.read('key', load)).rejects.toThrow(/config_generation/);
      // The counters' cache on the same connection reads its generation in the same statement: it fails closed too.
      await expect(counters.read('bucket', load)).rejects.toThrow(/config_generation/);
      expect(loads).toBe(2);
      db.exec('ALTER TABLE config_generation_away RENAME TO config_generation');
      expect(await cache.read('key', load)).toBe('value 3');
    } finally {
      db.close();
    }
  });

  it('does not keep a failed read', async () => {
    const cache = new ConfigReadCache(sqliteHandleForTests(stores));
    let calls = 0;
    const load = async () => {
      calls += 1;
      if (calls === 1) throw new Error('database is locked');
      return 'value';
    };
    await expect(cache.read('key', load)).rejects.toThrow('database is locked');
    expect(await cache.read('key', load)).toBe('value');
    expect(calls).toBe(2);
  });

  it('reads a lock afresh after writing one through it, in the same turn', async () => {
    const tenant = await stores.configStore.createTenant('locking');
    await stores.configStore.addDomain(tenant.id, 'locking.test');
    const user = await stores.configStore.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'carol@locking.test', domain: 'locking.test', passwordHash: null });
    const lockStore = cachedLockReads(stores.lockStore, new ConfigReadCache(sqliteHandleForTests(stores)));
    const config = parseConfig({ dataDir });
    const { locks } = makeLocksAndHolds({ ...stores, store: lockStore, clock: stores.clock, config });
    expect(await locks.activeLock(user.id)).toBeUndefined();
    await locks.lockAfterAbuse(user, [{ name: 'TEST_ABUSE' }]);
    expect((await locks.activeLock(user.id))?.locked).toBe(true);
  });

  it('reads suppression entries from memory until any connection changes a list, and ends an entry at its expiry', async () => {
    const tenant = await stores.configStore.createTenant('suppressing');
    // A change applies from the next turn (the generations read in this one may predate it).
    await nextTurn();
    let reads = 0;
    // A list that cannot tell whether a tenant has entries: every recipient is a read of its own.
    const counting = Object.assign(Object.create(stores.suppression) as LocalStores['suppression'], {
      hasEntries: undefined,
      find: (tenantId: string, address: string, now: number) => {
        reads += 1;
        return stores.suppression.find(tenantId, address, now);
      },
    });
    const cached = cachedSuppressionReads(counting, new ConfigReadCache(sqliteHandleForTests(stores)));
    const now = Date.now();
    for (let turn = 0; turn < 3; turn++) {
      expect(await cached.find(tenant.id, 'gone@Example.org', now)).toBeUndefined();
      await nextTurn();
    }
    expect(reads).toBe(1);

    // Another connection (the pipeline after a hard bounce, the CLI) adds it: refused at the next turn.
    await other.suppression.add({ tenantId: tenant.id, address: 'gone@example.org', source: 'bounce', reason: '550 5.1.1 no such user', expiresAt: now + 60_000 });
    await nextTurn();
    expect((await cached.find(tenant.id, 'gone@EXAMPLE.org', now))?.source).toBe('bounce');
    expect(reads).toBe(2);
    // Kept, and compared with each caller's time: past its expiry it no longer refuses, without a read.
    expect(await cached.find(tenant.id, 'gone@example.org', now + 60_000)).toBeUndefined();
    expect((await cached.find(tenant.id, 'gone@example.org', now + 59_999))?.address).toBe('gone@example.org');
    expect(reads).toBe(2);
    // Another tenant's list is its own.
    expect(await cached.find('another-tenant', 'gone@example.org', now)).toBeUndefined();

    await other.suppression.remove(tenant.id, 'gone@example.org');
    await nextTurn();
    expect(await cached.find(tenant.id, 'gone@example.org', now)).toBeUndefined();

    // A change through the cached list itself is seen in the same turn.
    expect(await cached.find(tenant.id, 'manual@example.org', now)).toBeUndefined();
    await cached.add({ tenantId: tenant.id, address: 'manual@example.org', source: 'manual', reason: 'asked to stop' });
    expect((await cached.find(tenant.id, 'manual@example.org', now))?.source).toBe('manual');
    expect(await cached.find(tenant.id, 'not an address', now)).toBeUndefined();
  });

  it('fails the recipient (451) when the probe of the list fails, never lets it through, and probes again once it works', async () => {
    const tenant = await stores.configStore.createTenant('failing-probe');
    await stores.suppression.add({ tenantId: tenant.id, address: 'gone@example.org', source: 'manual', reason: 'asked to stop' });
    await nextTurn();
    const list = stores.suppression as LocalStores['suppression'] & { hasEntries(tenantId: string): Promise<boolean> };
    let failing = true;
    const counting = Object.assign(Object.create(list) as typeof list, {
      hasEntries: (tenantId: string) => (failing ? Promise.reject(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' })) : list.hasEntries(tenantId)),
    });
    const cached = cachedSuppressionReads(counting, new ConfigReadCache(sqliteHandleForTests(stores)));
    const facts = { sender: { tenant }, rcptTo: 'gone@example.org', now: Date.now() } as unknown as RcptToFacts;
    await expect(cached.find(tenant.id, 'gone@example.org', facts.now)).rejects.toThrow('disk I/O error');
    const { final } = await runChecks([suppressionCheck(cached)], facts);
    expect(final).toMatchObject({ action: 'tempfail', code: 451 });
    // The failed probe was not kept: once the list answers, the suppressed recipient is refused.
    failing = false;
    const after = await runChecks([suppressionCheck(cached)], facts);
    expect(after.final).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.1.1' });
  });

  it('spares the read of each recipient to a tenant whose list is empty, until any connection adds to it', async () => {
    const tenant = await stores.configStore.createTenant('empty-list');
    const neighbour = await stores.configStore.createTenant('empty-neighbour');
    await nextTurn();
    const counted = { probes: 0, finds: 0 };
    const list = stores.suppression as LocalStores['suppression'] & { hasEntries(tenantId: string): Promise<boolean> };
    const counting = Object.assign(Object.create(list) as typeof list, {
      hasEntries: (tenantId: string) => {
        counted.probes += 1;
        return list.hasEntries(tenantId);
      },
      find: (tenantId: string, address: string, now: number) => {
        counted.finds += 1;
        return list.find(tenantId, address, now);
      },
    });
    const cached = cachedSuppressionReads(counting, new ConfigReadCache(sqliteHandleForTests(stores)));
    const now = Date.now();
    for (let turn = 0; turn < 3; turn++) {
      for (const recipient of [`first${turn}@example.org`, `second${turn}@example.org`]) expect(await cached.find(tenant.id, recipient, now)).toBeUndefined();
      await nextTurn();
    }
    expect(counted).toEqual({ probes: 1, finds: 0 });

    // Another connection adds an entry: from the next turn the tenant's recipients are read one by one.
    await other.suppression.add({ tenantId: tenant.id, address: 'gone@example.org', source: 'bounce', reason: '550 5.1.1 no such user' });
    await nextTurn();
    expect((await cached.find(tenant.id, 'gone@example.org', now))?.source).toBe('bounce');
    expect(await cached.find(tenant.id, 'other@example.org', now)).toBeUndefined();
    expect(counted).toEqual({ probes: 2, finds: 2 });
    // Another tenant's entries are not this one's: its own list is still empty.
    expect(await cached.find(neighbour.id, 'gone@example.org', now)).toBeUndefined();
    expect(counted).toEqual({ probes: 3, finds: 2 });

    // An entry that has expired is still a row: the tenant's recipients are still read.
    await other.suppression.remove(tenant.id, 'gone@example.org');
    await other.suppression.add({ tenantId: tenant.id, address: 'gone@example.org', source: 'bounce', reason: '550 5.1.1 no such user', expiresAt: now - 1 });
    await nextTurn();
    expect(await cached.find(tenant.id, 'gone@example.org', now)).toBeUndefined();
    expect(counted).toEqual({ probes: 4, finds: 3 });

    // Emptied again: no read per recipient any more.
    await other.suppression.purgeExpired(now);
    await nextTurn();
    expect(await cached.find(tenant.id, 'gone@example.org', now)).toBeUndefined();
    expect(await cached.find(tenant.id, 'third@example.org', now)).toBeUndefined();
    expect(counted).toEqual({ probes: 5, finds: 3 });
  });
});
