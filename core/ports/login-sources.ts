// Where each login has succeeded from (the memory behind the "smart lockout" of failed AUTH):
// DynamoDB on AWS (adapters/aws/dynamodb-login-source-store.ts), SQLite on the single node
// (adapters/local/login-source-store.ts). Contract: test/core/login-source-store.contract.ts.
//
// Promises every implementation keeps:
// - a source is familiar from the moment `remember` resolves until its expiry (`at + keepMs`),
//   and no longer: reads ignore expired entries even before they are purged;
// - remembering again renews the entry and never shortens it (a later, shorter keep leaves the
//   longer expiry);
// - logins and sources are kept apart exactly as given (the caller normalises them);
// - `purgeExpired` deletes only what expired at `now` (on DynamoDB, TTL may have done it first).

export interface LoginSourceStore {
  /** Records a successful login of `login` from `source` at `at`; forgotten after `keepMs`. */
  remember(login: string, source: string, at: number, keepMs: number): Promise<void>;
  /** Whether `login` succeeded from `source` and that is not yet forgotten at `now`. */
  isFamiliar(login: string, source: string, now: number): Promise<boolean>;
  /** Deletes what is forgotten at `now`; returns how many entries went. */
  purgeExpired(now: number): Promise<number>;
}
