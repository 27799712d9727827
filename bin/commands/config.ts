// config commands: check the configuration, and print its documentation from the schema.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema } from '../../core/config.js';
import { tenantIpRangeProblem } from '../../core/identity.js';
import { userSettingsSchema } from '../../core/settings.js';
import { withStores, type Command, type CommandContext } from './common.js';

/**
 * IP users that a tenant key could no longer make (wider than /24 or /56, or in a special range):
 * they keep working, but the operator should look at each.
 */
async function ipUserWarnings(ctx: CommandContext): Promise<string[]> {
  if (!existsSync(join(ctx.config.dataDir, 'outpost.db'))) return [];
  return withStores(ctx, async (stores) => {
    const tenants = new Map((await stores.configStore.listTenants()).map((t) => [t.id, t.name]));
    const warnings: string[] = [];
    for (const user of await stores.configStore.listUsers({ kind: 'ip' })) {
      const problem = tenantIpRangeProblem(user.identity);
      if (problem) warnings.push(`IP user ${user.identity} of tenant ${tenants.get(user.tenantId) ?? user.tenantId} relays without AUTH for a range a tenant may no longer make: ${problem}`);
    }
    return warnings;
  });
}

/** Markdown rows `| key | default | meaning |` for every leaf of a zod object schema. */
export function schemaRows(schema: z.ZodType, prefix = ''): string[] {
  const rows: string[] = [];
  const unwrap = (type: z.ZodType): z.ZodType => {
    let current: z.ZodType = type;
    for (;;) {
      const def = (current as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
      if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional' || def.type === 'nullable') && def.innerType) current = def.innerType;
      else return current;
    }
  };
  const inner = unwrap(schema);
  if (!(inner instanceof z.ZodObject)) return rows;
  for (const [key, field] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const leaf = unwrap(field);
    if (leaf instanceof z.ZodObject && path !== 'defaults') {
      rows.push(...schemaRows(field, path));
      continue;
    }
    const parsed = z.object({ v: field }).safeParse({});
    const fallback = parsed.success ? JSON.stringify(parsed.data.v) : undefined;
    rows.push(`| \`${path}\` | ${fallback === undefined ? '—' : `\`${fallback}\``} | ${(field.description ?? '').replace(/\|/g, '\\|')} |`);
  }
  return rows;
}

export const configCommands: Record<string, Command> = {
  check: {
    usage: '',
    summary: 'Validate the configuration (file + environment) and print the result as JSON, with warnings (e.g. IP users wider than a tenant may make) under "warnings".',
    async run(ctx) {
      const warnings = await ipUserWarnings(ctx);
      ctx.out(JSON.stringify({ ...ctx.config, operatorToken: ctx.config.operatorToken ? '(set)' : undefined, warnings }, null, 2));
      for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
    },
  },
  docs: {
    usage: '',
    summary: 'Print the documentation of every configuration key and per-user setting (Markdown).',
    async run(ctx) {
      ctx.out('| key | default | meaning |\n|---|---|---|');
      for (const row of schemaRows(configSchema)) ctx.out(row);
      ctx.out('\n| setting | built-in default | meaning |\n|---|---|---|');
      for (const row of schemaRows(userSettingsSchema)) ctx.out(row);
    },
  },
};
