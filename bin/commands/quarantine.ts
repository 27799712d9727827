// quarantine commands: messages held by the scanner, with their reasons.
import { deleteFromQuarantine, describeReasons, releaseFromQuarantine } from '../../core/scan/quarantine.js';
import { NotFoundError } from '../../core/stores.js';
import { auditCli, type Command, formatTime, positional, stringOption, table, tenantNamed, tenantOption, withStores, jsonOption } from './common.js';

export const quarantineCommands: Record<string, Command> = {
  list: {
    usage: '[--tenant NAME] [--json]',
    summary: 'List held messages with their reasons, newest first.',
    options: { ...tenantOption, ...jsonOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenantName = stringOption(ctx, 'tenant');
        const tenant = tenantName ? await tenantNamed(stores, tenantName) : undefined;
        const entries = await stores.quarantine.list({ tenantId: tenant?.id, limit: 200 });
        if (ctx.values.json) return ctx.out(JSON.stringify(entries, null, 2));
        table(ctx.out, ['ID', 'HELD', 'KIND', 'FROM', 'REASONS'], entries.map((e) => [e.messageId, formatTime(e.quarantinedAt), e.kind, e.envelope.mailFrom || '<>', describeReasons(e.symbols).join('; ')]));
      });
    },
  },
  release: {
    usage: 'QUEUE-ID',
    summary: 'Deliver a held message as it is.',
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const id = positional(ctx, 0, 'QUEUE-ID');
        const entry = await stores.quarantine.get(id);
        if (!entry) throw new NotFoundError(`message ${id} is not in quarantine`);
        await releaseFromQuarantine(stores, id, 'operator');
        await auditCli(stores, entry.tenantId, 'quarantine.released', id, { kind: entry.kind });
        ctx.out(`${id} released to delivery`);
      });
    },
  },
  delete: {
    usage: 'QUEUE-ID',
    summary: 'Delete a held message for good.',
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const id = positional(ctx, 0, 'QUEUE-ID');
        const entry = await stores.quarantine.get(id);
        if (!entry) throw new NotFoundError(`message ${id} is not in quarantine`);
        await deleteFromQuarantine(stores, id, 'operator');
        await auditCli(stores, entry.tenantId, 'quarantine.deleted', id, { kind: entry.kind });
        ctx.out(`${id} deleted`);
      });
    },
  },
};
