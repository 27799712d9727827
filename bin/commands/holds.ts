// queue hold | release | purge: a user's held mail, by hand. The running relay's hold check and
// pipeline pick up what these commands change (they share the data folder).
import { makeLocksAndHolds, queueLifetimeMs } from '../../core/holds.js';
import { createLogger } from '../../core/log.js';
import type { LocalStores } from '../local-stores.js';
import { type Command, type CommandContext, formatTime, positional, requiredOption, table, tenantNamed, tenantOption, withStores } from './common.js';
import { userOf } from './users.js';

/** Locks and held mail as the CLI uses them: an unlock releases the user's held mail. */
export function locksAndHoldsFor(ctx: CommandContext, stores: LocalStores) {
  return makeLocksAndHolds({
    store: stores.lockStore,
    holdStore: stores.holdStore,
    queue: stores.queue,
    blobs: stores.blobs,
    log: stores.log,
    counters: stores.counters,
    clock: stores.clock,
    configStore: stores.configStore,
    config: ctx.config,
    // Warnings (a purge, a hold) go to stderr as JSON: the audit line, apart from the command's output.
    logger: createLogger('holds', { level: 'warn', write: (line) => process.stderr.write(line + '\n') }),
  });
}

/** The held-mail part of `queue status`: one line per user and reason, overdue ones flagged. */
export async function printHeld(ctx: CommandContext, stores: LocalStores): Promise<void> {
  const lifetime = queueLifetimeMs(ctx.config.delivery.retrySchedule);
  const held = await stores.holdStore.summary({ overdueBefore: stores.clock.now() - lifetime });
  const total = held.reduce((sum, item) => sum + item.count, 0);
  ctx.out('');
  ctx.out(`held: ${total} message${total === 1 ? '' : 's'} (release with unlock or \`queue release\`, delete with \`queue purge\`)`);
  if (held.length === 0) return;
  const tenants = new Map((await stores.configStore.listTenants()).map((tenant) => [tenant.id, tenant.name]));
  table(
    ctx.out,
    ['IDENTITY', 'TENANT', 'REASON', 'HELD', 'OLDEST', 'OVERDUE'],
    held.map((item) => [item.identity, tenants.get(item.tenantId) ?? item.tenantId, item.reason, String(item.count), formatTime(item.oldestAt), String(item.overdue)]),
  );
  const overdue = held.reduce((sum, item) => sum + item.overdue, 0);
  if (overdue > 0) ctx.out(`${overdue} held longer than the queue's lifetime (${Math.round(lifetime / 3_600_000)} h): they stay held until released or purged`);
}

export const holdCommands: Record<string, Command> = {
  hold: {
    usage: '--tenant NAME IDENTITY',
    summary: "Hold a user's queued mail (and new mail) as it comes up, with or without a lock, until `queue release`.",
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        const { alreadyOnHold } = await locksAndHoldsFor(ctx, stores).holds.hold(user, 'operator');
        ctx.out(`${user.identity} ${alreadyOnHold ? 'was already' : 'is now'} on hold: its mail is held as it comes up for scanning or delivery`);
      });
    },
  },
  release: {
    usage: '--tenant NAME IDENTITY',
    summary: "Take a user off hold and put its held mail back in the queue (refused while it is locked: `unlock` releases it).",
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        const { released } = await locksAndHoldsFor(ctx, stores).holds.release(user, 'operator');
        ctx.out(`${user.identity} released: ${released} held message${released === 1 ? '' : 's'} put back in the queue`);
      });
    },
  },
  purge: {
    usage: '--tenant NAME IDENTITY',
    summary: "Delete a user's held mail and its files for good (message log status purged; the sender is not told).",
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        const { purged } = await locksAndHoldsFor(ctx, stores).holds.purge(user.id, 'operator');
        ctx.out(`${purged} held message${purged === 1 ? '' : 's'} of ${user.identity} purged`);
      });
    },
  },
};
