// Messages held by a scan verdict (the message itself stays in the blob store): DynamoDB on AWS
// (adapters/aws/dynamodb-quarantine-store.ts), SQLite on the single node
// (adapters/local/quarantine-store.ts). Contract: test/core/quarantine-store.contract.ts.
// The types live beside the quarantine rules (core/scan/quarantine.ts).
//
// Promises every implementation keeps:
// - one entry per message, as stored (a retried scan adding it again keeps one);
// - `list` is newest first, per tenant or for all, before a time and up to a limit;
// - `olderThan` is oldest first (retention sweeps); the store never deletes blobs.
export type { QuarantineEntry, QuarantineStore } from '../scan/quarantine.js';
