// tenant and domain commands.
import { CLI_ACTOR } from '../../core/audit.js';
import { removeDomain } from '../../core/app/remove-domain.js';
import { applyCeilingAssignments } from '../../core/ceilings.js';
import { assertNotPublicSuffix, verificationName, verificationValue } from '../../core/domains.js';
import { normaliseDomain } from '../../core/identity.js';
import { parseSettingAssignments, settingKeys } from '../../core/settings.js';
import { effectiveUserSettings } from '../../core/stores.js';
import { auditCli, type Command, formatTime, positional, requiredOption, table, tenantNamed, tenantOption, withStores, UsageError, jsonOption } from './common.js';

const TENANT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const tenantCommands: Record<string, Command> = {
  add: {
    usage: 'NAME',
    summary: 'Create a tenant (lowercase letters, digits, . _ -).',
    async run(ctx) {
      const name = positional(ctx, 0, 'NAME');
      if (!TENANT_NAME.test(name)) throw new UsageError(`tenant name "${name}" must be lowercase letters, digits, ".", "_" or "-"`);
      await withStores(ctx, async (stores) => {
        const tenant = await stores.configStore.createTenant(name);
        await auditCli(stores, tenant.id, 'tenant.created', tenant.name);
        ctx.out(`tenant ${tenant.name} created (id ${tenant.id})`);
      });
    },
  },
  list: {
    usage: '[--json]',
    summary: 'List tenants.',
    options: { ...jsonOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenants = await stores.configStore.listTenants();
        if (ctx.values.json) return ctx.out(JSON.stringify(tenants, null, 2));
        table(ctx.out, ['NAME', 'ID', 'SUSPENDED', 'CREATED'], tenants.map((t) => [t.name, t.id, t.suspended ? 'yes' : 'no', formatTime(t.createdAt)]));
      });
    },
  },
  show: {
    usage: 'NAME',
    summary: 'Print a tenant, its domains and its default settings as JSON.',
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, positional(ctx, 0, 'NAME'));
        const domains = (await stores.configStore.listDomains(tenant.id)).map((d) => d.name);
        const pendingDomains = (await stores.configStore.listDomainClaims(tenant.id)).map((d) => d.name);
        ctx.out(JSON.stringify({ ...tenant, domains, pendingDomains, effectiveDefaults: effectiveUserSettings(undefined, tenant, ctx.config.defaults) }, null, 2));
      });
    },
  },
  set: {
    usage: 'NAME KEY=VALUE...',
    summary: 'Change tenant default settings (lists comma-separated; KEY= clears the default).',
    async run(ctx) {
      const name = positional(ctx, 0, 'NAME');
      const pairs = ctx.positionals.slice(1);
      if (pairs.length === 0) throw new UsageError('give at least one KEY=VALUE');
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, name);
        const { set, cleared } = splitAssignments(pairs);
        const settings: Record<string, unknown> = { ...tenant.settings, ...parseSettingAssignments(set) };
        for (const key of cleared) delete settings[key];
        const updated = await stores.configStore.updateTenant(tenant.id, { settings });
        await auditCli(stores, tenant.id, 'settings.changed', 'tenant', { changes: pairs });
        ctx.out(JSON.stringify(updated.settings, null, 2));
      });
    },
  },
  ceiling: {
    usage: 'NAME KEY=VALUE...',
    summary:
      "Set the tenant's ceilings: the highest value of a limit (0, no limit, counts as above it) or the forced value of a boolean (blockSpam=true); KEY= removes one. The tenant's API key cannot go beyond them; stored values are clamped.",
    async run(ctx) {
      const name = positional(ctx, 0, 'NAME');
      const pairs = ctx.positionals.slice(1);
      if (pairs.length === 0) throw new UsageError('give at least one KEY=VALUE');
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, name);
        let ceilings;
        try {
          ceilings = applyCeilingAssignments(tenant.ceilings, pairs);
        } catch (error: unknown) {
          throw new UsageError(error instanceof Error ? error.message : String(error));
        }
        const updated = await stores.configStore.updateTenant(tenant.id, { ceilings });
        await auditCli(stores, tenant.id, 'ceilings.changed', 'tenant', { ceilings: updated.ceilings });
        ctx.out(JSON.stringify(updated.ceilings, null, 2));
      });
    },
  },
  suspend: {
    usage: 'NAME',
    summary: 'Suspend a tenant: its users are refused at MAIL FROM (550 5.7.1).',
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, positional(ctx, 0, 'NAME'));
        await stores.configStore.updateTenant(tenant.id, { suspended: true });
        await auditCli(stores, tenant.id, 'tenant.suspended', tenant.name);
        ctx.out(`tenant ${tenant.name} suspended`);
      });
    },
  },
  unsuspend: {
    usage: 'NAME',
    summary: 'Lift a suspension.',
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, positional(ctx, 0, 'NAME'));
        await stores.configStore.updateTenant(tenant.id, { suspended: false });
        await auditCli(stores, tenant.id, 'tenant.unsuspended', tenant.name);
        ctx.out(`tenant ${tenant.name} active`);
      });
    },
  },
};

/** `KEY=` (empty value) clears an override; the rest are assignments. */
export function splitAssignments(pairs: string[]): { set: string[]; cleared: string[] } {
  const set: string[] = [];
  const cleared: string[] = [];
  for (const pair of pairs) {
    if (/^[A-Za-z]+=$/.test(pair)) {
      const key = pair.slice(0, -1);
      if (!(settingKeys as string[]).includes(key)) throw new UsageError(`unknown setting "${key}"; known: ${settingKeys.join(', ')}`);
      cleared.push(key);
    } else set.push(pair);
  }
  return { set, cleared };
}

export const domainCommands: Record<string, Command> = {
  add: {
    usage: '--tenant NAME DOMAIN',
    summary: 'Serve a domain for a tenant, verified at once: the operator vouches for it (its users may then be user@DOMAIN or DOMAIN). Pending claims of other tenants on it are dropped.',
    options: { ...tenantOption },
    async run(ctx) {
      const domain = normaliseDomain(positional(ctx, 0, 'DOMAIN'));
      assertNotPublicSuffix(domain);
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        await stores.configStore.addDomain(tenant.id, domain);
        await auditCli(stores, tenant.id, 'domain.added', domain, { verified: true });
        ctx.out(`domain ${domain} added to tenant ${tenant.name}`);
      });
    },
  },
  list: {
    usage: '[--tenant NAME]',
    summary: 'List domains: verified, and pending ones (added with a tenant key) with the TXT record that proves them.',
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenantName = typeof ctx.values.tenant === 'string' ? ctx.values.tenant : undefined;
        const tenant = tenantName ? await tenantNamed(stores, tenantName) : undefined;
        const all = await stores.configStore.listTenants();
        const tenants = new Map(all.map((t) => [t.id, t.name]));
        const domains = await stores.configStore.listDomains(tenant?.id);
        const claims = (await Promise.all((tenant ? [tenant] : all).map((t) => stores.configStore.listDomainClaims(t.id)))).flat();
        const rows = [
          ...domains.map((d) => [d.name, tenants.get(d.tenantId) ?? d.tenantId, 'verified', formatTime(d.createdAt), '']),
          ...claims.map((c) => [c.name, tenants.get(c.tenantId) ?? c.tenantId, 'pending', formatTime(c.createdAt), `${verificationName(c.name)} TXT "${verificationValue(c.token)}"`]),
        ].sort((x, y) => (x[0] ?? '').localeCompare(y[0] ?? ''));
        table(ctx.out, ['DOMAIN', 'TENANT', 'STATE', 'ADDED', 'RECORD'], rows);
      });
    },
  },
  remove: {
    usage: '--tenant NAME DOMAIN',
    summary: 'Stop serving a domain and remove its DKIM keys (refused while users of it exist: remove them first), or withdraw a pending claim.',
    options: { ...tenantOption },
    async run(ctx) {
      const domain = normaliseDomain(positional(ctx, 0, 'DOMAIN'));
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const outcome = await removeDomain(stores, { tenant, name: domain, actor: CLI_ACTOR });
        ctx.out(outcome === 'withdrawn' ? `pending domain ${domain} withdrawn from tenant ${tenant.name}` : `domain ${domain} removed from tenant ${tenant.name}`);
      });
    },
  },
};
