// One batch of the counter worker thread's calls (counter-worker.ts): every call in one
// transaction on the worker's connection, each in a savepoint of its own (the store's methods
// nest their transactions), so a call that fails is undone alone and its answer says why.
import { errorMessage } from '../../core/log.js';
import type { SqliteCounterStore } from './counter-store.js';
import type { CounterAnswer, CounterCall } from './counter-thread.js';
import { writeLocked, type Db } from './sqlite.js';

const failure = (id: number, error: unknown): CounterAnswer => {
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  return { id, ok: false, message: errorMessage(error), ...(code ? { code } : {}) };
};

/** Thrown out of the batch's transaction when SQLite rolled it back: carries the call that made it. */
class RolledBack {
  constructor(readonly by: Promise<unknown>) {}
}

/**
 * Runs `calls` in one transaction and answers each. The store's methods do their SQLite work
 * before they return (their promises are already settled), so the whole batch runs and commits
 * before any answer is awaited. A commit that fails fails every call (none of them took effect).
 * So does a call after which SQLite rolled the whole transaction back (a full disk, I/O, memory):
 * the calls after it must not run (and autocommit) outside the transaction.
 */
export async function runCounterBatch(db: Db, store: SqliteCounterStore, calls: CounterCall[], setCallTime: (now: number) => void): Promise<CounterAnswer[]> {
  const results: Array<Promise<unknown>> = [];
  try {
    writeLocked(db, () => {
      for (const call of calls) {
        setCallTime(call.now);
        const method = store[call.method] as (...args: unknown[]) => Promise<unknown>;
        let result: Promise<unknown>;
        try {
          result = method.apply(store, call.args);
        } catch (error: unknown) {
          result = Promise.reject(error);
        }
        results.push(result);
        if (!db.inTransaction) throw new RolledBack(result);
      }
    });
  } catch (error: unknown) {
    for (const result of results) result.catch(() => undefined);
    const cause = error instanceof RolledBack ? await error.by.then(() => new Error('SQLite rolled the counter batch back'), (reason: unknown) => reason) : error;
    return calls.map((call) => failure(call.id, cause));
  }
  const settled = await Promise.allSettled(results);
  return settled.map((outcome, index): CounterAnswer => {
    const id = (calls[index] as CounterCall).id;
    return outcome.status === 'fulfilled' ? { id, ok: true, value: outcome.value } : failure(id, outcome.reason);
  });
}
