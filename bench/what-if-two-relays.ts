// What if the single node ran its SMTP sessions on two threads? An upper bound, measured without
// building it: two `outpost start` relays (each with its own data folder, writer and pipeline, as
// bench:ingress starts one) take one burst between them, 10 kept sessions each from two
// smtp-source processes at once, against one relay taking all 20 sessions from one smtp-source.
// Rounds alternate the two arrangements; each prints its rate and how busy the whole machine was.
//
//   npx tsx bench/what-if-two-relays.ts [--messages 3000] [--rounds 5] [--sessions 20]
//
// Two relays each count their own rate limits, so this is not a configuration to run: it tells how
// much a relay that spread its sessions over two threads (with the rate limits shared exactly
// between them) could gain on this machine before the machine itself is the limit.
import { parseArgs } from 'node:util';
import { machineBusyShare, machineTimes, runSmtpSource, startOutpostChild, startSmtpSink, type OutpostChild } from './outpost-child.js';
import { median } from './support.js';
import { startDnsServer } from '../test/helpers/dns-server.js';
import { testZone } from '../test/helpers/e2e-node.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '5' },
    sessions: { type: 'string', default: '20' },
  },
});
const MESSAGES = Number(values.messages);
const ROUNDS = Number(values.rounds);
const SESSIONS = Number(values.sessions);
if (!(Number.isInteger(MESSAGES) && MESSAGES >= 2 && Number.isInteger(SESSIONS) && SESSIONS >= 2 && Number.isInteger(ROUNDS) && ROUNDS >= 1)) {
  throw new Error('--messages and --sessions must be whole numbers of at least 2, --rounds at least 1');
}

/** smtp-source with kept sessions against one relay; rejects if any message was refused. */
function source(relay: OutpostChild, sessions: number, messages: number): Promise<number> {
  return runSmtpSource(relay.port, { sessions, messages, reuse: true });
}

/** One burst of MESSAGES in all, after both relays' queues drained: its rate and the machine's busy share. */
async function burst(relays: OutpostChild[], send: () => Promise<unknown>): Promise<{ rate: number; busy: number | undefined }> {
  for (const relay of relays) await relay.settle();
  const before = machineTimes();
  const started = performance.now();
  await send();
  const seconds = (performance.now() - started) / 1000;
  return { rate: MESSAGES / seconds, busy: machineBusyShare(before, machineTimes()) };
}

const percent = (share: number | undefined): string => (share === undefined ? '?' : `${(share * 100).toFixed(0)} %`);

const dns = await startDnsServer(testZone());
const sink = await startSmtpSink('smarthost');
const relays: OutpostChild[] = [];
try {
  for (let i = 0; i < 2; i++) relays.push(await startOutpostChild({ smarthostPort: sink.port, dnsAddress: dns.address }));
  const [first, second] = relays as [OutpostChild, OutpostChild];
  const arrangements = [
    { name: `one relay, ${SESSIONS} sessions`, send: () => source(first, SESSIONS, MESSAGES) },
    // An odd number of sessions or messages: the first relay takes the one left over.
    { name: `two relays, ${Math.ceil(SESSIONS / 2)} and ${Math.floor(SESSIONS / 2)} sessions`, send: () => Promise.all([source(first, Math.ceil(SESSIONS / 2), Math.ceil(MESSAGES / 2)), source(second, Math.floor(SESSIONS / 2), Math.floor(MESSAGES / 2))]) },
  ];
  const results = new Map<string, number[]>();
  // One warm-up round not counted (JIT), then alternating order.
  for (let round = -1; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? arrangements : [...arrangements].reverse();
    for (const arrangement of order) {
      const { rate, busy } = await burst(relays, arrangement.send);
      process.stderr.write(`${round < 0 ? 'warm-up' : `round ${round + 1}`} ${arrangement.name}: ${rate.toFixed(0)} msg/s, machine ${percent(busy)} busy\n`);
      if (round >= 0) results.set(arrangement.name, [...(results.get(arrangement.name) ?? []), rate]);
    }
  }
  const [one, two] = arrangements.map((arrangement) => median(results.get(arrangement.name) ?? []));
  console.log(`${MESSAGES} messages of 2 KB a burst, kept sessions, ${ROUNDS} rounds after 1 not counted; median msg/s`);
  console.log(`${arrangements[0]?.name}: ${(one ?? 0).toFixed(0)}`);
  console.log(`${arrangements[1]?.name}: ${(two ?? 0).toFixed(0)}`);
  console.log(`two / one: ${((two ?? 0) / (one ?? 1)).toFixed(2)}`);
} finally {
  for (const relay of relays) await relay.stop();
  await sink.stop();
  await dns.stop();
}
process.exit(0);
