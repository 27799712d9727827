// message and queue commands: the message log and the pipeline queues.
import { type Command, formatTime, positional, table, tenantNamed, tenantOption, withStores, jsonOption, stringOption } from './common.js';
import { MESSAGE_STATUSES, NotFoundError, type MessageStatus } from '../../core/stores.js';
import { UsageError } from './common.js';
import { QUEUE_NAMES, type QueueName } from '../../core/ports.js';
import { printHeld } from './holds.js';

function messageStatus(value: string | undefined): MessageStatus | undefined {
  if (value === undefined) return undefined;
  const known = MESSAGE_STATUSES.find((status) => status === value);
  if (!known) throw new UsageError(`--status must be one of ${MESSAGE_STATUSES.join(', ')}`);
  return known;
}

export const messageCommands: Record<string, Command> = {
  show: {
    usage: 'QUEUE-ID [--json]',
    summary: "Print one message's history: received, queued, scanned, delivered, deferred (with the remote answer), bounced.",
    options: { ...jsonOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const id = positional(ctx, 0, 'QUEUE-ID');
        const found = await stores.log.get(id);
        if (!found) throw new NotFoundError(`no message ${id}`);
        if (ctx.values.json) return ctx.out(JSON.stringify(found, null, 2));
        const { message, events } = found;
        ctx.out(`message ${message.id}  status ${message.status}`);
        ctx.out(`  from ${message.mailFrom || '<>'}  identity ${message.identity ?? '-'}  size ${message.size}`);
        ctx.out(`  to ${message.rcptTo.join(', ')}`);
        if (message.subject) ctx.out(`  subject ${message.subject}`);
        for (const event of events) ctx.out(`${formatTime(event.at)}  ${event.event.padEnd(12)} ${JSON.stringify(event.detail)}`);
      });
    },
  },
  list: {
    usage: '[--tenant NAME] [--sender A] [--recipient A] [--status S] [--limit N]',
    summary: 'Search the message log, newest first.',
    options: { ...tenantOption, sender: { type: 'string' }, recipient: { type: 'string' }, status: { type: 'string' }, limit: { type: 'string' } },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenantName = stringOption(ctx, 'tenant');
        const tenant = tenantName ? await tenantNamed(stores, tenantName) : undefined;
        const { items } = await stores.log.search({
          tenantId: tenant?.id,
          sender: stringOption(ctx, 'sender'),
          recipient: stringOption(ctx, 'recipient'),
          status: messageStatus(stringOption(ctx, 'status')),
          limit: Number(stringOption(ctx, 'limit') ?? 50),
        });
        table(ctx.out, ['ID', 'RECEIVED', 'STATUS', 'FROM', 'TO'], items.map((m) => [m.id, formatTime(m.receivedAt), m.status, m.mailFrom || '<>', m.rcptTo.join(',')]));
      });
    },
  },
};

export const queueCommands: Record<string, Command> = {
  status: {
    usage: '',
    summary: 'Depth of each pipeline queue and its dead-letter queue, the held mail per user (overdue: held longer than the retry schedule), and the entries set aside as damaged at start-up.',
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const rows: string[][] = [];
        for (const name of ['scan', 'deliver', 'bounce']) {
          for (const queue of [name, `${name}-dlq`]) {
            const depth = await stores.queue.depth(queue);
            rows.push([queue, String(depth.visible), String(depth.inFlight), String(depth.delayed)]);
          }
        }
        table(ctx.out, ['QUEUE', 'VISIBLE', 'IN-FLIGHT', 'DELAYED'], rows);
        await printHeld(ctx, stores);
        // Entries damaged on disk, set aside at start-up (their files are in the data folder's damaged/).
        const damaged = stores.database.countDamagedEntries();
        if (damaged === 0) return;
        ctx.out('');
        ctx.out(`set aside as damaged: ${damaged} (newest 20 below; files kept in ${ctx.config.dataDir}/damaged)`);
        table(
          ctx.out,
          ['FOUND', 'QUEUE', 'MESSAGE', 'ACTION', 'REASON'],
          stores.database.listDamagedEntries(20).map((entry) => [formatTime(entry.foundAt), entry.queue, entry.messageId ?? `(row ${entry.queueMessageId})`, entry.action, entry.reason]),
        );
      });
    },
  },
  redrive: {
    usage: '[QUEUE...]',
    summary: 'Move dead-lettered messages back to their queue (scan, deliver, bounce; default all) once the cause is fixed; a running relay picks them up.',
    async run(ctx) {
      const names = ctx.positionals.length > 0 ? ctx.positionals : [...QUEUE_NAMES];
      const queues = names.map((name): QueueName => {
        const known = QUEUE_NAMES.find((queue) => queue === name);
        if (!known) throw new UsageError(`unknown queue "${name}"; queues are ${QUEUE_NAMES.join(', ')}`);
        return known;
      });
      await withStores(ctx, async (stores) => {
        for (const queue of queues) {
          const moved = await stores.queue.redrive(queue);
          ctx.out(`${queue}-dlq -> ${queue}: ${moved} message${moved === 1 ? '' : 's'} moved`);
        }
      });
    },
  },
};
