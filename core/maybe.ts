// A value now, or a promise of it. The reads the ingress makes for every command (a user, a lock,
// a domain, a DNS answer, a rate-limit reservation) are mostly answered from memory; an `async`
// function or an `await` turns each into a promise and a later turn of the microtask queue, and
// on the relay's thread those promises were a fifth of the admission checks' cost. A port whose
// implementation may answer at once returns a Maybe, and its callers go on at once when it did
// (`andThen` below), and through the promise only when it did not. An error stays a rejected
// promise, never a throw, so that a caller that awaits and one that chains see it alike.

export type Maybe<T> = T | Promise<T>;

const REASON = Symbol('outpost.maybe.reason');
type TaggedRejection = Promise<never> & { [REASON]?: { error: unknown } };

/**
 * `next(value)` now if `value` is there, else once it is: a promise only when one was given. (Not
 * named `then`: a module that exports `then` is a thenable, and `import()` of it calls that.)
 */
export function andThen<T, R>(value: Maybe<T>, next: (value: T) => Maybe<R>): Maybe<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/**
 * `next(value)`, or `onError(error)` if `value` fails: at once when the value is there or the
 * failure is one a cache kept (`rejected`), through the promise otherwise. As `promise.then(next,
 * onError)`, an error thrown by `next` is not given to `onError`.
 */
export function andThenOr<T, R>(value: Maybe<T>, next: (value: T) => Maybe<R>, onError: (error: unknown) => Maybe<R>): Maybe<R> {
  if (!(value instanceof Promise)) return next(value);
  const kept = (value as TaggedRejection)[REASON];
  return kept ? onError(kept.error) : value.then(next, onError);
}

/**
 * The first `find(item)` of `items` that is not undefined, in order (undefined if none): each
 * asked once the one before has answered, at once while they answer at once.
 */
export function firstOf<I, R>(items: readonly I[], find: (item: I) => Maybe<R | undefined>, from = 0): Maybe<R | undefined> {
  for (let i = from; i < items.length; i++) {
    const found = find(items[i] as I);
    if (found instanceof Promise) return found.then((value) => (value !== undefined ? value : firstOf(items, find, i + 1)));
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Calls `handle` with the error if `value` is a promise that rejects; nothing else waits for it. */
export function whenFailed(value: Maybe<unknown>, handle: (error: unknown) => void): void {
  if (value instanceof Promise) value.catch(handle);
}

/**
 * `work()`, with a throw turned into a rejected promise: for the functions that answer with a
 * Maybe, whose callers handle errors on the promise only.
 */
export function attempt<T>(work: () => Maybe<T>): Maybe<T> {
  try {
    return work();
  } catch (error: unknown) {
    return Promise.reject(error);
  }
}

/**
 * A rejected promise whose reason can also be read at once (andThenOr): what a cache answers for a
 * failure it keeps (a DNS name with no records), so that a caller that can go on at once after
 * it does so, while one that awaits sees the rejection as before. It counts as handled from the
 * start: a cache hands the same one to every caller, and a caller that reads it at once attaches
 * nothing to it.
 */
export function rejected(error: unknown): Promise<never> {
  const promise: TaggedRejection = Promise.reject(error);
  promise.catch(() => undefined);
  promise[REASON] = { error };
  return promise;
}
