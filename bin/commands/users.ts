// user commands: the outgoing users (SMTP identities) of a tenant.
import { CLI_ACTOR } from '../../core/audit.js';
import { createUser, generatePassword, UserCreationRefused, type UserRefusal } from '../../core/app/create-user.js';
import { hashPassword, IdentityError, parseIdentity, type OutgoingUser, type Tenant } from '../../core/identity.js';
import { parseSettingAssignments } from '../../core/settings.js';
import { effectiveUserSettings, NotFoundError } from '../../core/stores.js';
import type { LocalStores } from '../local-stores.js';
import { auditCli, type Command, type CommandContext, formatTime, positional, readStdin, requiredOption, table, tenantNamed, tenantOption, withStores, UsageError, jsonOption } from './common.js';
import { splitAssignments } from './tenants.js';

/** The CLI's words for a refused user: the operator may see which tenant's range is in the way. */
function refusalError(refusal: UserRefusal, tenant: Tenant): Error {
  switch (refusal.reason) {
    case 'domain-not-of-tenant':
      return new IdentityError(`domain ${refusal.domain} is not a domain of tenant ${tenant.name} (add it: npx outpost domain add --tenant ${tenant.name} ${refusal.domain})`);
    case 'password-for-ip-user':
      return new UsageError('an IP user has no password');
    case 'range-not-for-tenants':
      return new IdentityError(refusal.detail);
    case 'range-overlap':
      return new IdentityError(`${refusal.range} overlaps ${refusal.other} of another tenant; an address may belong to one tenant only`);
    case 'range-too-wide':
      return new IdentityError(`${refusal.range} is wider than /${refusal.widest}: an IP user relays without AUTH; pass --allow-wide if this whole range really is the tenant's mail servers`);
  }
}

export async function userOf(stores: LocalStores, tenant: Tenant, input: string): Promise<OutgoingUser> {
  const { identity } = parseIdentity(input);
  const user = (await stores.configStore.listUsers({ tenantId: tenant.id })).find((u) => u.identity === identity);
  if (!user) throw new NotFoundError(`tenant ${tenant.name} has no user ${identity} (see: npx outpost user list --tenant ${tenant.name})`);
  return user;
}

async function passwordFromStdin(ctx: CommandContext): Promise<string | undefined> {
  if (!ctx.values['password-stdin']) return undefined;
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (password.length < 8) throw new UsageError('the password read from stdin needs at least 8 characters');
  return password;
}

export const userCommands: Record<string, Command> = {
  add: {
    usage: '--tenant NAME IDENTITY [--password-stdin] [--allow-wide]',
    summary: 'Create an outgoing user: user@domain (mailbox), domain (domain user) or IP/CIDR (IP user, no password; at most /16 or /32 for IPv6 unless --allow-wide, never overlapping another tenant). Without --password-stdin a password is generated and printed once.',
    options: { ...tenantOption, 'password-stdin': { type: 'boolean' }, 'allow-wide': { type: 'boolean' } },
    async run(ctx) {
      const identity = positional(ctx, 0, 'IDENTITY');
      const given = await passwordFromStdin(ctx);
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        let created;
        try {
          created = await createUser(stores, {
            tenant,
            identity,
            ...(given !== undefined ? { password: given } : {}),
            actor: CLI_ACTOR,
            allowWideRange: ctx.values['allow-wide'] === true,
          });
        } catch (error: unknown) {
          if (error instanceof UserCreationRefused) throw refusalError(error.refusal, tenant);
          throw error;
        }
        const { user, generatedPassword } = created;
        ctx.out(`${user.kind} user ${user.identity} created in tenant ${tenant.name} (id ${user.id})`);
        if (generatedPassword) ctx.out(`password: ${generatedPassword}`);
      });
    },
  },
  list: {
    usage: '[--tenant NAME] [--json]',
    summary: 'List outgoing users.',
    options: { ...tenantOption, ...jsonOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenantName = typeof ctx.values.tenant === 'string' ? ctx.values.tenant : undefined;
        const tenant = tenantName ? await tenantNamed(stores, tenantName) : undefined;
        const tenants = new Map((await stores.configStore.listTenants()).map((t) => [t.id, t.name]));
        const users = await stores.configStore.listUsers({ tenantId: tenant?.id });
        if (ctx.values.json) {
          return ctx.out(JSON.stringify(users.map(({ passwordHash: _hidden, ...rest }) => rest), null, 2));
        }
        table(ctx.out, ['IDENTITY', 'KIND', 'TENANT', 'CREATED'], users.map((u) => [u.identity, u.kind, tenants.get(u.tenantId) ?? u.tenantId, formatTime(u.createdAt)]));
      });
    },
  },
  show: {
    usage: '--tenant NAME IDENTITY',
    summary: 'Print the effective settings of a user as JSON (and its own overrides).',
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        const settings = effectiveUserSettings(user.settings, tenant, ctx.config.defaults);
        ctx.out(JSON.stringify({ identity: user.identity, kind: user.kind, tenant: tenant.name, id: user.id, settings, overrides: user.settings }, null, 2));
      });
    },
  },
  set: {
    usage: '--tenant NAME IDENTITY KEY=VALUE...',
    summary: 'Change per-user settings (lists comma-separated; KEY= goes back to the tenant default).',
    options: { ...tenantOption },
    async run(ctx) {
      const pairs = ctx.positionals.slice(1);
      if (pairs.length === 0) throw new UsageError('give at least one KEY=VALUE');
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        const { set, cleared } = splitAssignments(pairs);
        const overrides: Record<string, unknown> = { ...user.settings, ...parseSettingAssignments(set) };
        for (const key of cleared) delete overrides[key];
        const updated = await stores.configStore.updateUser(user.id, { settings: overrides });
        await auditCli(stores, tenant.id, 'settings.changed', user.identity, { changes: pairs });
        ctx.out(JSON.stringify(effectiveUserSettings(updated.settings, tenant, ctx.config.defaults), null, 2));
      });
    },
  },
  passwd: {
    usage: '--tenant NAME IDENTITY [--password-stdin]',
    summary: 'Set or rotate a password; without --password-stdin a new one is generated and printed once.',
    options: { ...tenantOption, 'password-stdin': { type: 'boolean' } },
    async run(ctx) {
      const given = await passwordFromStdin(ctx);
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        if (user.kind === 'ip') throw new UsageError('an IP user has no password');
        const password = given ?? generatePassword();
        await stores.configStore.updateUser(user.id, { passwordHash: await hashPassword(password) });
        await auditCli(stores, tenant.id, 'user.password-set', user.identity);
        ctx.out(`password of ${user.identity} changed`);
        if (!given) ctx.out(`password: ${password}`);
      });
    },
  },
  remove: {
    usage: '--tenant NAME IDENTITY',
    summary: 'Delete an outgoing user.',
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const user = await userOf(stores, tenant, positional(ctx, 0, 'IDENTITY'));
        await stores.configStore.deleteUser(user.id);
        await auditCli(stores, tenant.id, 'user.deleted', user.identity);
        ctx.out(`user ${user.identity} removed`);
      });
    },
  },
};
