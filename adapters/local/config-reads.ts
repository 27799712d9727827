// The configuration the relay's thread reads for every message — the sender's user (by login or
// by client address) and tenant, the domains of its addresses, its lock, the suppression entry of
// each recipient — kept in memory between changes. Each was a SQLite read
// on the relay's thread (about a tenth of it under load), and each found its pages changed by the
// other connections' commits. A change to any of them, by any connection (the API on this thread,
// the CLI in another process, the pipeline locking a user), moves `config_generation` on (triggers,
// migration 11); the kept copies are dropped when it has moved. The generation is read at most
// once per turn of the event loop, so a change takes effect for every read that starts in a later
// turn: within milliseconds, not after a time to live (a suspended tenant or a moved domain must
// not keep sending for that long).
import type { ConfigStore } from '../../core/ports/config-store.js';
import type { LockStore } from '../../core/locks.js';
import { normaliseSuppressedAddress, type SuppressionList } from '../../core/suppression.js';
import { attempt, andThen, type Maybe } from '../../core/maybe.js';
import type { Db } from './sqlite.js';

/** Most reads kept; beyond, all are dropped and read again (there are few tenants, users and domains a minute). */
export const MAX_KEPT = 10_000;

/** The one-row tables whose numbers the triggers move on. */
export type GenerationTable = 'config_generation' | 'counter_generation';

const GENERATIONS_SQL = 'SELECT (SELECT n FROM config_generation WHERE id = 1) AS config_generation, (SELECT n FROM counter_generation WHERE id = 1) AS counter_generation';

/**
 * Both generations of one connection, read together at most once per turn of the event loop. Each
 * read of a WAL database is a read transaction of its own (two file locks taken and given back, the
 * WAL index looked at): the configuration's cache and the counters' cache on the relay's connection
 * asked once each per turn, a twentieth of the relay's thread with a new connection per message.
 */
class TurnGenerations {
  private values: Readonly<Record<GenerationTable, number | undefined>> | undefined;

  constructor(private readonly db: Db) {}

  /** The table's number as read in this turn (read now if not yet); throws what the read threw. */
  read(table: GenerationTable): number | undefined {
    if (!this.values) {
      const row = this.db.prepare(GENERATIONS_SQL).get() as Partial<Record<GenerationTable, number | null>> | undefined;
      this.values = { config_generation: row?.config_generation ?? undefined, counter_generation: row?.counter_generation ?? undefined };
      setImmediate(() => (this.values = undefined));
    }
    return this.values[table];
  }

  /** After a write on this thread: the next read asks the database again, in this turn too. */
  forget(): void {
    this.values = undefined;
  }
}

const generationsByConnection = new WeakMap<Db, TurnGenerations>();

function generationsOf(db: Db): TurnGenerations {
  let generations = generationsByConnection.get(db);
  if (!generations) generationsByConnection.set(db, (generations = new TurnGenerations(db)));
  return generations;
}

/** A read kept: its promise, and its value once it has one (served then without a promise). */
type KeptRead = { done: false; loading: Promise<unknown> } | { done: true; value: unknown };

export class ConfigReadCache {
  private generation: number | undefined;
  private readonly kept = new Map<string, KeptRead>();
  private readonly generations: TurnGenerations;

  /**
   * `generationTable`: the one-row table whose number the triggers move on (config_generation for
   * the configuration, migration 11; counter_generation for the counters read at connect and AUTH,
   * migration 13). Caches on the same connection share one read of both per turn.
   */
  constructor(
    db: Db,
    private readonly generationTable: GenerationTable = 'config_generation',
  ) {
    this.generations = generationsOf(db);
  }

  /**
   * The value of `load()` for `key`, kept until the configuration changes: the value itself once
   * the load has answered (no promise, no later turn: see core/maybe.ts), its promise until then.
   */
  read<T>(key: string, load: () => Maybe<T>): Maybe<T> {
    try {
      this.dropIfChanged();
    } catch (error: unknown) {
      // The database failed under us: the read fails as the store's own would, with nothing served from memory.
      return Promise.reject(error);
    }
    const hit = this.kept.get(key);
    if (hit) return (hit.done ? hit.value : hit.loading) as Maybe<T>;
    if (this.kept.size >= MAX_KEPT) this.kept.clear();
    const loading = attempt(load);
    if (!(loading instanceof Promise)) {
      this.kept.set(key, { done: true, value: loading });
      return loading;
    }
    const entry: KeptRead = { done: false, loading };
    this.kept.set(key, entry);
    loading.then(
      (value) => {
        // Still the entry kept (not dropped by a change meanwhile): later reads get the value itself.
        if (this.kept.get(key) === entry) this.kept.set(key, { done: true, value });
      },
      () => {
        // A failed read is not kept: the next one asks the store again.
        if (this.kept.get(key) === entry) this.kept.delete(key);
      },
    );
    return loading;
  }

  /** After a write on this thread: the next read asks the store (and the generation) again. */
  invalidate(): void {
    this.kept.clear();
    this.generations.forget();
  }

  /**
   * Runs a write made through a cached store, then drops what is kept, whether it succeeded or lost
   * to another writer: the read-modify-write that follows must see the store.
   */
  async changing<T>(change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } finally {
      this.invalidate();
    }
  }

  private dropIfChanged(): void {
    let generation: number | undefined;
    try {
      generation = this.generations.read(this.generationTable);
    } catch (error: unknown) {
      // Unchecked, nothing kept may be served: drop it all, and check again at the next read.
      this.kept.clear();
      this.generation = undefined;
      throw error;
    }
    // No row (a database without its migration cannot be open here): keep nothing.
    if (generation === undefined || generation !== this.generation) this.kept.clear();
    this.generation = generation;
  }
}

/**
 * `target` with the methods of `overrides` in place of its own; every other method runs on
 * `target` itself, so that its own reads inside a write (read-modify-write) are never served from
 * the cache.
 */
function withOverrides<T extends object>(target: T, overrides: Partial<T>): T {
  return new Proxy(target, {
    get(object, property) {
      if (Object.hasOwn(overrides, property)) return Reflect.get(overrides, property);
      const value: unknown = Reflect.get(object, property, object);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}

/** `configStore` with the reads the ingress makes per message served through `cache`. */
export function cachedConfigReads(configStore: ConfigStore, cache: ConfigReadCache): ConfigStore {
  return withOverrides(configStore, {
    getUser: (id) => cache.read(`user ${id}`, () => configStore.getUser(id)),
    getTenant: (id) => cache.read(`tenant ${id}`, () => configStore.getTenant(id)),
    getDomain: (name) => cache.read(`domain ${name}`, () => configStore.getDomain(name)),
    getDomainClaim: (tenantId, name) => cache.read(`claim ${tenantId} ${name}`, () => configStore.getDomainClaim(tenantId, name)),
    // "No IP user here" is kept too: adding one moves the generation on like any other change.
    findIpUser: (ip) => cache.read(`ip ${ip}`, () => configStore.findIpUser(ip)),
  });
}

/**
 * `lockStore` with its per-message read (a user's lock) served through `cache`. A write (a lock, a
 * timed unlock applied) drops what is kept, whether it succeeded or lost to another writer: the
 * read-modify-write that follows must see the store.
 */
export function cachedLockReads(lockStore: LockStore, cache: ConfigReadCache): LockStore {
  return withOverrides(lockStore, {
    read: (userId) => cache.read(`lock ${userId}`, () => lockStore.read(userId)),
    write: (next, expectedVersion, events) => cache.changing(() => lockStore.write(next, expectedVersion, events)),
  });
}

/**
 * `list` with its per-recipient read (RCPT's suppression check) served through `cache`. What is
 * kept is the entry whatever its expiry, and the expiry is compared with the caller's `now` at
 * each read: an entry that expires while kept stops refusing at its time, with no change to the
 * table to drop it. A change made through it drops what is kept at once, as cachedLockReads does.
 *
 * Most recipients are new ones, each a read of the database on the relay's thread; a list that
 * can tell whether a tenant has any entry at all (`hasEntries`, kept the same way) spares that
 * read to every tenant whose list is empty.
 */
export function cachedSuppressionReads(list: SuppressionList & { hasEntries?(tenantId: string): Promise<boolean> }, cache: ConfigReadCache): SuppressionList {
  const hasEntries = list.hasEntries?.bind(list);
  return withOverrides(list, {
    add: (entry) => cache.changing(() => list.add(entry)),
    remove: (tenantId, address) => cache.changing(() => list.remove(tenantId, address)),
    purgeExpired: (now) => cache.changing(() => list.purgeExpired(now)),
    // At once from what is kept (core/maybe.ts).
    find: (tenantId, address, now) => {
      let normalised: string;
      try {
        normalised = normaliseSuppressedAddress(address);
      } catch {
        return undefined; // not an address: other RCPT checks refuse it
      }
      const entryNow = () =>
        andThen(
          // now = 0: before every expiry, so the entry is found however long it still has.
          cache.read(`suppression ${tenantId} ${normalised}`, () => list.find(tenantId, normalised, 0)),
          (entry) => (entry && (entry.expiresAt === null || entry.expiresAt > now) ? entry : undefined),
        );
      if (!hasEntries) return entryNow();
      return andThen(cache.read(`suppressions of ${tenantId}`, () => hasEntries(tenantId)), (any) => (any ? entryNow() : undefined));
    },
  });
}
