// Held mail (queued jobs kept out of the pipeline) and senders on hold: DynamoDB on AWS
// (adapters/aws/dynamodb-hold-store.ts), SQLite on the single node (adapters/local/hold-store.ts).
// Contract: test/core/holds.contract.ts. The types live beside the hold rules (core/holds.ts).
//
// Promises every implementation keeps:
// - a held job is added once (idempotent on its id) and keeps its body verbatim;
// - each held job is given to one claim only, even to claims taken at once, until that claim is
//   older than `staleBefore` (a release or purge that died half-way is taken over);
// - `remove` forgets a job only while it is still taken by the given claim;
// - lists are oldest first, per sender, per tenant or across tenants, up to a limit;
// - a sender is on hold once, however often it is put on hold;
// - `summary` sums held mail per sender and reason, counting what is overdue.
export type { HeldMessage, HeldStage, HeldSummary, HoldReason, HoldStore, SenderHold } from '../holds.js';
