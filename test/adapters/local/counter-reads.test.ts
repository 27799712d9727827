// The relay thread keeps the counter buckets it reads for every new session (an address's
// reputation at connect, the blocks after failed logins at AUTH) until any connection changes them
// (counter_generation, moved on by the triggers of migration 13). Proved on a real node: a second
// connection to the same database (as the CLI opens one, or the pipeline thread) raises a score or
// blocks an address, and the very next session sees it; and on the stores: unchanged buckets are
// read from memory, and a bucket that leaves its window stops counting at its time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigReadCache, MAX_KEPT } from '../../../adapters/local/config-reads.js';
import { CachedCounterReads, MAX_KEPT_BUCKETS } from '../../../adapters/local/counter-reads.js';
import { openLocalStores, sqliteHandleForTests, type LocalStores } from '../../../bin/local-stores.js';
import { parseConfig } from '../../../core/config.js';
import type { CounterStore } from '../../../core/counters.js';
import { counterKeys, MINUTE_MS, SESSION_START_KEY_PREFIXES } from '../../../core/policy/keys.js';
import type { Clock } from '../../../core/ports.js';
import { rawSession, startE2eNode, type E2eNode } from '../../helpers/e2e-node.js';
import { RawSmtp } from '../../helpers/smtp-client.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('the relay sees every change to the counters it reads per session at its next session', () => {
  let e2e: E2eNode;
  /** A second connection to the node's database, as the CLI opens one. */
  let cli: LocalStores;
  const config = parseConfig({});

  beforeAll(async () => {
    e2e = await startE2eNode();
    const acme = await e2e.tenant('acme', ['acme.test']);
    await e2e.user(acme, 'alice@acme.test');
    cli = openLocalStores(parseConfig({ dataDir: e2e.dataDir }));
  }, 30_000);

  afterAll(async () => {
    cli?.close();
    await e2e?.stop();
  });

  async function greeting(): Promise<string> {
    const { client, greeting } = await RawSmtp.open(e2e.node.ports.submission);
    client.close();
    return greeting;
  }

  it("an address's reputation raised and forgiven from another connection", async () => {
    const key = counterKeys.reputation('127.0.0.1');
    const windowMs = 10 * config.policy.reputation.halfLifeMinutes * MINUTE_MS;
    expect(await greeting()).toMatch(/^220 /);
    expect(await greeting()).toMatch(/^220 /);
    // The score is units / 100: well past the reject score.
    await cli.counters.add(key, 100 * (config.policy.reputation.rejectScore + 5), windowMs);
    expect(await greeting()).toMatch(/^554 5\.7\.1 /);
    await cli.counters.reset(key);
    expect(await greeting()).toMatch(/^220 /);
  });

  it('an address blocked after failed logins, and unblocked, from another connection', async () => {
    const key = counterKeys.authBlockIp('127.0.0.1');
    const auth = async () => {
      const { smtp, auth } = await rawSession(e2e.node.ports.submission, 'alice@acme.test');
      smtp.close();
      return auth?.slice(0, 9);
    };
    expect(await auth()).toBe('235 2.7.0');
    await cli.counters.add(key, 1, config.policy.authFailure.blockMinutes * MINUTE_MS);
    expect(await auth()).toBe('421 4.7.0');
    await cli.counters.reset(key);
    expect(await auth()).toBe('235 2.7.0');
  });
});

/**
 * Stands still between advances (a MovableClock is the real time plus an offset): a bucket one
 * millisecond inside its window stays inside it however slow the machine is.
 */
class StillClock implements Clock {
  private at = Date.now();
  now(): number {
    return this.at;
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

describe('CachedCounterReads', () => {
  let dataDir: string;
  let stores: LocalStores;
  let other: LocalStores;
  const clock = new StillClock();
  const windowMs = 60_000;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'outpost-counter-reads-'));
    stores = openLocalStores(parseConfig({ dataDir }), clock);
    other = openLocalStores(parseConfig({ dataDir }), clock);
  });

  afterAll(async () => {
    other?.close();
    stores?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The node's counter store, counting the bucket reads that reach it, behind the cache. */
  function cached(): { reads: () => number; counters: CounterStore } {
    let reads = 0;
    const store = stores.counters;
    const counting = Object.assign(Object.create(store) as CounterStore, {
      buckets: (key: string, window: number) => {
        reads += 1;
        return store.buckets(key, window);
      },
    });
    const counters = new CachedCounterReads(counting, new ConfigReadCache(sqliteHandleForTests(stores), 'counter_generation'), SESSION_START_KEY_PREFIXES, clock);
    return { reads: () => reads, counters };
  }

  const generation = (of: LocalStores) => (sqliteHandleForTests(of).prepare('SELECT n FROM counter_generation WHERE id = 1').get() as { n: number }).n;

  it('reads unchanged buckets from memory, and again after a change on any connection', async () => {
    const { reads, counters } = cached();
    const key = counterKeys.reputation('192.0.2.1');
    for (let turn = 0; turn < 3; turn++) {
      expect(await counters.buckets(key, windowMs)).toEqual([]);
      await nextTurn();
    }
    expect(reads()).toBe(1);
    await other.counters.add(key, 250, windowMs);
    await nextTurn();
    expect((await counters.buckets(key, windowMs)).map((bucket) => bucket.units)).toEqual([250]);
    expect(reads()).toBe(2);
    await other.counters.reset(key);
    await nextTurn();
    expect(await counters.buckets(key, windowMs)).toEqual([]);
    expect(reads()).toBe(3);
  });

  it('drops a bucket from its answers when it leaves the window, without a read', async () => {
    const { reads, counters } = cached();
    const key = counterKeys.authBlockUser('someone@example.org');
    await other.counters.add(key, 1, windowMs);
    await nextTurn();
    const [bucket] = await counters.buckets(key, windowMs);
    if (!bucket) throw new Error('the bucket is missing');
    expect(reads()).toBe(1);
    clock.advance(bucket.at + windowMs - 1 - clock.now());
    expect(await counters.buckets(key, windowMs)).toHaveLength(1);
    clock.advance(1);
    expect(await counters.buckets(key, windowMs)).toEqual([]);
    expect(reads()).toBe(1);
  });

  it('asks the store when the clock was set back since it read', async () => {
    const { reads, counters } = cached();
    const key = counterKeys.reputation('192.0.2.3');
    await other.counters.add(key, 7, windowMs);
    await nextTurn();
    clock.advance(windowMs + 5_000);
    expect(await counters.buckets(key, windowMs)).toEqual([]);
    // Back to when the bucket was live: what was kept no longer holds it.
    clock.advance(-windowMs);
    expect((await counters.buckets(key, windowMs)).map((bucket) => bucket.units)).toEqual([7]);
    expect(reads()).toBe(2);
    clock.advance(windowMs);
  });

  it(`keeps at most ${MAX_KEPT_BUCKETS} buckets of a key; a longer list is read from the store each time`, async () => {
    const longWindowMs = 10 * 60_000;
    const fill = async (key: string, seconds: number) => {
      for (let second = 0; second < seconds; second++) {
        await other.counters.add(key, 1, longWindowMs);
        clock.advance(1_000);
      }
      await nextTurn();
    };
    const { reads, counters } = cached();
    const kept = counterKeys.reputation('192.0.2.4');
    await fill(kept, MAX_KEPT_BUCKETS);
    expect(await counters.buckets(kept, longWindowMs)).toHaveLength(MAX_KEPT_BUCKETS);
    expect(await counters.buckets(kept, longWindowMs)).toHaveLength(MAX_KEPT_BUCKETS);
    expect(reads()).toBe(1);
    const tooMany = counterKeys.reputation('192.0.2.5');
    await fill(tooMany, MAX_KEPT_BUCKETS + 1);
    expect(await counters.buckets(tooMany, longWindowMs)).toHaveLength(MAX_KEPT_BUCKETS + 1);
    expect(await counters.buckets(tooMany, longWindowMs)).toHaveLength(MAX_KEPT_BUCKETS + 1);
    expect(reads()).toBe(1 + 3);
  });

  it(`keeps at most ${MAX_KEPT} keys, whatever names clients log in with`, async () => {
    const { reads, counters } = cached();
    // A guesser trying a new username at each AUTH: one key each.
    const key = (n: number) => counterKeys.authBlockUser(`guess-${n}@example.org`);
    for (let n = 0; n < MAX_KEPT; n++) await counters.buckets(key(n), windowMs);
    expect(reads()).toBe(MAX_KEPT);
    await counters.buckets(key(0), windowMs);
    expect(reads()).toBe(MAX_KEPT);
    // One more name: what was kept is dropped, not grown.
    await counters.buckets(key(MAX_KEPT), windowMs);
    await counters.buckets(key(0), windowMs);
    expect(reads()).toBe(MAX_KEPT + 2);
  });

  it('reads afresh after a write through it, in the same turn', async () => {
    const { reads, counters } = cached();
    const key = counterKeys.reputation('192.0.2.2');
    expect(await counters.buckets(key, windowMs)).toEqual([]);
    await counters.add(key, 10, windowMs);
    expect((await counters.buckets(key, windowMs)).map((bucket) => bucket.units)).toEqual([10]);
    await counters.reset(key);
    expect(await counters.buckets(key, windowMs)).toEqual([]);
    expect(reads()).toBe(3);
    expect(await counters.reserve({ limits: [{ key, units: 4, limit: 100, windowMs }] })).toEqual({ ok: true });
    expect((await counters.buckets(key, windowMs)).map((bucket) => bucket.units)).toEqual([4]);
    expect(reads()).toBe(4);
  });

  it('keeps only the keys read per session; the others are read each time', async () => {
    const { reads, counters } = cached();
    const key = counterKeys.invalidRecipients('user-1');
    await counters.buckets(key, windowMs);
    await counters.buckets(key, windowMs);
    expect(reads()).toBe(2);
  });

  it('moves the generation on for every change to the kept keys, and not for the others', async () => {
    for (const prefix of SESSION_START_KEY_PREFIXES) {
      const before = generation(other);
      await stores.counters.add(`${prefix}ip:198.51.100.7`, 1, windowMs);
      expect(generation(other)).toBe(before + 1);
      await stores.counters.add(`${prefix}ip:198.51.100.7`, 1, windowMs);
      expect(generation(other)).toBe(before + 2);
      await stores.counters.reset(`${prefix}ip:198.51.100.7`);
      expect(generation(other)).toBe(before + 3);
    }
    const before = generation(other);
    // The rate limits, written once a second, and the other shared keys leave it alone.
    await stores.counters.add(counterKeys.rateMinuteUser('user-1'), 1, windowMs);
    await stores.counters.add(counterKeys.invalidRecipients('user-1'), 1, windowMs);
    await stores.counters.add('reputation', 1, windowMs);
    expect(generation(other)).toBe(before);
  });
});
