// The fuzzers in their bounded form (seconds): the SMTP session fuzzer against the real relay
// process and the MIME fuzzer through the scan stage's MIME path. A random seed each run, printed
// in the test name and in any failure; replay one with OUTPOST_FUZZ_SEED=N. The long form for
// manual runs: `npm run fuzz -- --minutes 30`.
import { describe, expect, it } from 'vitest';
import { seedFromEnv } from './prng.js';
import { MAX_RSS_GROWTH_BYTES, runFuzz } from './run-fuzz.js';

const seed = seedFromEnv();

describe('fuzzing', () => {
  it(`no crash, no unhandled rejection, still relaying, memory within 100 MB (seed ${seed})`, async () => {
    const started = Date.now();
    const report = await runFuzz({ seed, smtpMs: 6000, mimeMs: 3000, progress: (line) => console.log(`[fuzz +${Date.now() - started} ms] ${line}`) });
    expect(report.smtp.sessions).toBeGreaterThan(20);
    expect(report.smtp.commands).toBeGreaterThan(100);
    expect(report.mime.messages).toBeGreaterThan(10);
    expect(report.relayRss.end - report.relayRss.start).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  }, 240_000);
});
