// Windowed counters behind rate limits, distinct-recipient limits and abuse counters: DynamoDB on
// AWS (adapters/aws/dynamodb-counter-store.ts), SQLite on the single node
// (adapters/local/counter-store.ts). Contract: test/core/counters.contract.ts.
// The types live beside the window rules (core/counters.ts).
//
// Promises every implementation keeps:
// - exact under concurrency: of N parallel reservations against a limit L, exactly L succeed;
// - `reserve` is all-or-nothing across every limit and distinct member it names, and says which
//   limit refused and when the attempt would fit again;
// - windows slide: an entry leaves its window exactly one window after it was made;
// - held reservations are kept or released by `settle`; distinct members count once each;
// - `purgeExpired` deletes only entries out of every window (on DynamoDB, TTL may do it first).
export * from '../counters.js';
