// Lock state of each outgoing user and its history: DynamoDB on AWS (adapters/aws/dynamodb-lock-store.ts),
// SQLite on the single node (adapters/local/lock-store.ts). Contract: test/core/lock-store.contract.ts.
// The types live beside the lock rules (core/locks.ts), which are their only writer.
//
// Promises every implementation keeps:
// - `write` is a compare-and-set on the state's version (0: none stored yet): of two writers based
//   on the same version exactly one wins, and the loser's events stay out of the history;
// - the state and its events are written in one atomic step; history comes back oldest first;
// - reasons keep their symbols with evidence and scores as written; who placed a manual lock is
//   kept and forgotten when the lock is lifted;
// - `listLocked` returns the stored states that are locked (expired ones included, not yet
//   lifted), optionally of one tenant, without reading unlocked users.
export type { LockEvent, LockEventKind, LockPlacer, LockState, LockStore } from '../locks.js';
