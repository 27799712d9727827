// Counts the DynamoDB requests and sequential round trips one message costs on the AWS
// deployment's stores, against DynamoDB Local. A middleware on the client counts every request
// (capacity units are not measured: DynamoDB Local does not report them faithfully, so
// docs/aws-data-model.md derives them from the item sizes and AWS's rules); a "round trip" is a request that
// starts while no other request of the same message is in flight (requests sent in parallel
// share one). The message's path is the one the ingress and the Lambdas take for a sender that
// logs in with AUTH and sends to one recipient: login, lock and settings at MAIL FROM, suppression
// and the rate limits (per minute, per hour, distinct recipients per day) at RCPT, settling the
// reservation and logging the message at DATA, then the scan and deliver handlers' hold check
// (the sender's lock, then whether it is on hold: what MailHolds reads), log reads and events. Uncontended: every message comes from its own session, one after the other.
//
//   npx tsx bench/dynamodb-round-trips.ts [--messages 200]
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDbConfigStore } from '../adapters/aws/dynamodb-config-store.js';
import { DynamoDbCounterStore } from '../adapters/aws/dynamodb-counter-store.js';
import { DynamoDbHoldStore } from '../adapters/aws/dynamodb-hold-store.js';
import { DynamoDbLockStore } from '../adapters/aws/dynamodb-lock-store.js';
import { DynamoDbMessageLog } from '../adapters/aws/dynamodb-message-log.js';
import { DynamoDbSuppressionList } from '../adapters/aws/dynamodb-suppression-list.js';
import { createTables } from '../adapters/aws/tables.js';
import { emulatorClientConfig, startDynamoDbLocal } from '../test/helpers/aws-emulators.js';

const messages = Number(process.argv[process.argv.indexOf('--messages') + 1]) || 200;

interface Tally {
  requests: number;
  rounds: number;
  byCommand: Map<string, number>;
}

const newTally = (): Tally => ({ requests: 0, rounds: 0, byCommand: new Map() });
let tally = newTally();
let inFlight = 0;

const dynamo = await startDynamoDbLocal();
const raw = new DynamoDBClient(emulatorClientConfig(dynamo));
raw.middlewareStack.add(
  (next, context) => async (args) => {
    const command = context.commandName ?? 'unknown';
    tally.requests += 1;
    if (inFlight === 0) tally.rounds += 1;
    tally.byCommand.set(command, (tally.byCommand.get(command) ?? 0) + 1);
    inFlight += 1;
    try {
      return await next(args);
    } finally {
      inFlight -= 1;
    }
  },
  { step: 'initialize', name: 'countRoundTrips' },
);
const client = DynamoDBDocumentClient.from(raw, { marshallOptions: { removeUndefinedValues: true } });

try {
  const tables = await createTables(raw, 'bench');
  const config = new DynamoDbConfigStore({ client, table: tables.config });
  const counters = new DynamoDbCounterStore({ client, table: tables.counters });
  const locks = new DynamoDbLockStore({ client, table: tables.locks });
  const log = new DynamoDbMessageLog({ client, table: tables.messages });
  const suppressions = new DynamoDbSuppressionList({ client, table: tables.suppressions });
  const holds = new DynamoDbHoldStore({ client, table: tables.holds });
  // The hold check of the scan and deliver stages (MailHolds.holdIfSenderStopped) for a sender
  // neither locked nor on hold: the lock state, then the sender hold.
  const holdCheck = async (): Promise<void> => {
    if (!(await locks.read(user.id))?.locked) await holds.senderHold(user.id);
  };
  const tenant = await config.createTenant('acme');
  await config.addDomain(tenant.id, 'acme.example');
  const user = await config.createUser({ tenantId: tenant.id, kind: 'mailbox', identity: 'alice@acme.example', domain: 'acme.example', passwordHash: 'scrypt$...' });

  const stages: Record<string, (i: number) => Promise<void>> = {
    'AUTH (login lookup)': async () => {
      await config.findUserByLogin('alice@acme.example');
    },
    'MAIL FROM (lock, settings)': async () => {
      await Promise.all([locks.read(user.id), config.getUser(user.id).then((found) => config.getTenant(found?.tenantId ?? ''))]);
    },
    'RCPT (suppression, 3 limits)': async (i) => {
      const rcpt = `r${i}@example.org`;
      await Promise.all([
        suppressions.find(tenant.id, rcpt, Date.now()),
        counters.reserve({
          limits: [
            { key: `rate:minute:${user.id}`, units: 1, limit: 1_000_000, windowMs: 60_000 },
            { key: `rate:hour:${user.id}`, units: 1, limit: 1_000_000, windowMs: 3_600_000 },
          ],
          distinct: [{ key: `rcpt:day:${user.id}`, members: [rcpt], limit: 1_000_000, windowMs: 86_400_000 }],
          hold: { transaction: `s${i}`, item: rcpt },
        }),
      ]);
    },
    'DATA (settle, log)': async (i) => {
      await counters.settle(`s${i}`, [`r${i}@example.org`]);
      await log.create({ id: `M${i}`, tenantId: tenant.id, userId: user.id, identity: user.identity, mailFrom: user.identity, rcptTo: [`r${i}@example.org`], size: 2048, subject: 'hello', status: 'queued', receivedAt: Date.now() });
      await log.addEvent(`M${i}`, 'received', { clientIp: '192.0.2.1', size: 2048, rcptCount: 1 });
    },
    'scan (holds, log)': async (i) => {
      await holdCheck();
      await log.get(`M${i}`);
      await log.addEvent(`M${i}`, 'scanned', { kind: 'clean', score: 0 }, 'queued');
    },
    'deliver (holds, log, settings)': async (i) => {
      await holdCheck();
      await Promise.all([log.get(`M${i}`), config.getUser(user.id).then((found) => config.getTenant(found?.tenantId ?? ''))]);
      await log.addEvent(`M${i}`, 'delivered', { recipient: `r${i}@example.org`, response: '250 ok', attempt: 1 }, 'delivered');
    },
  };

  const totals = new Map<string, Tally>();
  const durations: number[] = [];
  for (let i = 0; i < messages; i++) {
    const started = performance.now();
    for (const [stage, run] of Object.entries(stages)) {
      tally = newTally();
      await run(i);
      const sum = totals.get(stage) ?? newTally();
      sum.requests += tally.requests;
      sum.rounds += tally.rounds;
      for (const [command, count] of tally.byCommand) sum.byCommand.set(command, (sum.byCommand.get(command) ?? 0) + count);
      totals.set(stage, sum);
    }
    durations.push(performance.now() - started);
  }

  const per = (value: number): string => (value / messages).toFixed(2).padStart(8);
  console.log(`DynamoDB Local, ${messages} messages of one recipient each, uncontended; per message:`);
  console.log(`${'stage'.padEnd(34)}${'requests'.padStart(8)}${'rounds'.padStart(8)}  commands`);
  const all = newTally();
  for (const [stage, sum] of totals) {
    all.requests += sum.requests;
    all.rounds += sum.rounds;
    const commands = [...sum.byCommand].map(([command, count]) => `${command.replace(/Command$/, '')}×${(count / messages).toFixed(2).replace(/\.00$/, '')}`).join(', ');
    console.log(`${stage.padEnd(34)}${per(sum.requests)}${per(sum.rounds)}  ${commands}`);
  }
  console.log(`${'total'.padEnd(34)}${per(all.requests)}${per(all.rounds)}`);
  durations.sort((a, b) => a - b);
  console.log(`time per message on DynamoDB Local: median ${durations[Math.floor(durations.length / 2)]?.toFixed(1)} ms, p95 ${durations[Math.floor(durations.length * 0.95)]?.toFixed(1)} ms`);
} finally {
  raw.destroy();
  await dynamo.stop();
}
