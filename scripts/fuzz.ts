// The long fuzz run for manual use: `npm run fuzz -- --minutes 30 [--seed N]`. Four fifths of the
// time go to the SMTP session fuzzer against a real relay process, one fifth to the MIME fuzzer,
// in rounds of at most five minutes (each round a fresh relay and a seed of its own, printed);
// the first failure stops the run and prints the seed that replays it (OUTPOST_FUZZ_SEED=N with
// the bounded test, or --seed N here).
import { parseArgs } from 'node:util';
import { Prng } from '../test/fuzz/prng.js';
import { runFuzz } from '../test/fuzz/run-fuzz.js';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' }, seed: { type: 'string' } } });
const minutes = Number(values.minutes);
if (!Number.isFinite(minutes) || minutes <= 0) {
  process.stderr.write('usage: npm run fuzz -- --minutes N [--seed S]\n');
  process.exit(2);
}
const master = new Prng(values.seed !== undefined && /^\d+$/.test(values.seed) ? Number(values.seed) >>> 0 : Math.floor(Math.random() * 4_294_967_296) >>> 0);
process.on('unhandledRejection', (reason: unknown) => {
  process.stderr.write(`unhandled rejection in the fuzzer (seed ${master.seed}): ${reason instanceof Error ? reason.stack : String(reason)}\n`);
  process.exit(1);
});
const deadline = Date.now() + minutes * 60_000;
const log = (line: string): void => void process.stdout.write(`[${new Date().toISOString()}] ${line}\n`);
log(`fuzzing for ${minutes} min, master seed ${master.seed}`);
let rounds = 0;
while (Date.now() < deadline - 20_000) {
  const roundMs = Math.min(5 * 60_000, deadline - Date.now() - 15_000);
  const seed = master.uint32();
  rounds += 1;
  try {
    const report = await runFuzz({ seed, smtpMs: Math.round(roundMs * 0.8), mimeMs: Math.round(roundMs * 0.2), progress: log });
    log(`round ${rounds} ok: seed ${seed}, relay RSS ${Math.round(report.relayRss.start / 1e6)} → ${Math.round(report.relayRss.end / 1e6)} MB, slowest MIME message ${report.mime.slowest.ms} ms (${report.mime.slowest.bytes} bytes)`);
  } catch (error: unknown) {
    log(`round ${rounds} FAILED (master seed ${master.seed}): ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
log(`done: ${rounds} rounds without a finding (master seed ${master.seed})`);
process.exit(0);
