// lock commands: automatic locks, their reasons and history, and manual unlock.
import type { LocalStores } from '../local-stores.js';
import type { CommandContext } from './common.js';
import { auditCli, type Command, formatTime, positional, requiredOption, stringOption, table, tenantNamed, tenantOption, withStores, jsonOption } from './common.js';
import { userOf } from './users.js';
import { locksAndHoldsFor } from './holds.js';

/** An unlock also releases the user's held mail. */
function locksFor(ctx: CommandContext, stores: LocalStores) {
  return locksAndHoldsFor(ctx, stores).locks;
}

export const lockCommands: Record<string, Command> = {
  list: {
    usage: '[--tenant NAME] [--json]',
    summary: 'List locked users with their reasons and when each lock ends.',
    options: { ...tenantOption, ...jsonOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenantName = stringOption(ctx, 'tenant');
        const tenant = tenantName ? await tenantNamed(stores, tenantName) : undefined;
        const locks = await locksFor(ctx, stores).listLocks({ tenantId: tenant?.id });
        if (ctx.values.json) return ctx.out(JSON.stringify(locks, null, 2));
        const tenants = new Map((await stores.configStore.listTenants()).map((t) => [t.id, t.name]));
        table(
          ctx.out,
          ['IDENTITY', 'TENANT', 'LOCKED', 'UNTIL', 'TIMED-UNLOCKS', 'REASONS'],
          locks.map((lock) => [
            lock.identity,
            tenants.get(lock.tenantId) ?? lock.tenantId,
            formatTime(lock.lockedAt),
            lock.permanent ? 'permanent' : formatTime(lock.until),
            String(lock.timedUnlocks),
            lock.reasons.map((reason) => reason.name).join(','),
          ]),
        );
      });
    },
  },
  history: {
    usage: '--tenant NAME IDENTITY',
    summary: 'Every lock, timed unlock and manual unlock of a user, with reasons.',
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        for (const event of await locksFor(ctx, stores).history(user.id)) {
          const detail = event.kind === 'lock' ? JSON.stringify(event.reasons ?? []) : `${event.by ?? ''} ${event.reason ?? ''}`.trim();
          ctx.out(`${formatTime(event.at)}  ${event.kind.padEnd(13)} ${event.permanent ? 'permanent ' : ''}${detail}`);
        }
      });
    },
  },
};

export const unlockCommand: Command = {
  usage: '--tenant NAME IDENTITY [--reason TEXT]',
  summary: 'Lift a lock (temporary or permanent); resets the count of timed unlocks; puts the mail the lock held back in the queue.',
  options: { ...tenantOption, reason: { type: 'string' } },
  async run(ctx) {
    await withStores(ctx, async (stores) => {
      const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
      const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
      const reason = stringOption(ctx, 'reason') ?? 'unlocked with the CLI';
      await locksFor(ctx, stores).unlock(user.id, 'operator', reason);
      await auditCli(stores, tenant.id, 'user.unlocked', user.identity, { reason });
      ctx.out(`${user.identity} unlocked`);
    });
  },
};
