// suppression commands: addresses a tenant's users may not send to (hard bounces, manual entries).
import { type Command, formatTime, positional, requiredOption, table, tenantNamed, tenantOption, withStores, stringOption, UsageError } from './common.js';
import { NotFoundError } from '../../core/stores.js';
import { isPlausibleAddress } from '../../smtp-ec2/ingress.js';

export const suppressionCommands: Record<string, Command> = {
  list: {
    usage: '--tenant NAME',
    summary: 'List suppressed addresses with source, reason and expiry.',
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const entries = await stores.suppression.list(tenant.id, stores.clock.now());
        table(ctx.out, ['ADDRESS', 'SOURCE', 'SINCE', 'EXPIRES', 'REASON'], entries.map((e) => [e.address, e.source, formatTime(e.createdAt), e.expiresAt ? formatTime(e.expiresAt) : 'never', e.reason]));
      });
    },
  },
  add: {
    usage: '--tenant NAME ADDRESS [--reason TEXT] [--days N]',
    summary: 'Suppress an address for the tenant (no expiry unless --days).',
    options: { ...tenantOption, reason: { type: 'string' }, days: { type: 'string' } },
    async run(ctx) {
      const address = positional(ctx, 0, 'ADDRESS');
      if (!isPlausibleAddress(address)) throw new UsageError(`"${address}" is not an email address`);
      const days = stringOption(ctx, 'days');
      if (days !== undefined && !/^\d+$/.test(days)) throw new UsageError('--days takes a whole number');
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const entry = await stores.suppression.add({
          tenantId: tenant.id,
          address,
          source: 'manual',
          reason: stringOption(ctx, 'reason') ?? 'added with the CLI',
          expiresAt: days === undefined ? null : stores.clock.now() + Number(days) * 86_400_000,
        });
        ctx.out(`${entry.address} suppressed for tenant ${tenant.name}`);
      });
    },
  },
  remove: {
    usage: '--tenant NAME ADDRESS',
    summary: 'Remove an address from the suppression list.',
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const address = positional(ctx, 0, 'ADDRESS');
        if (!(await stores.suppression.remove(tenant.id, address))) throw new NotFoundError(`${address} is not suppressed for tenant ${tenant.name}`);
        ctx.out(`${address} removed from the suppression list of ${tenant.name}`);
      });
    },
  },
};
