// dkim commands: per-domain signing keys and the DNS records to publish.
import { addDkimKey, rotateDkimKey, type DkimAlgorithm } from '../../core/dkim/keys.js';
import { normaliseDomain } from '../../core/identity.js';
import { NotFoundError } from '../../core/stores.js';
import type { LocalStores } from '../local-stores.js';
import type { CommandContext } from './common.js';
import { type Command, positional, requiredOption, stringOption, table, tenantNamed, tenantOption, withStores, UsageError, formatTime } from './common.js';

function algorithmOption(ctx: CommandContext): DkimAlgorithm {
  const value = stringOption(ctx, 'algorithm') ?? 'rsa';
  if (value !== 'rsa' && value !== 'ed25519') throw new UsageError('--algorithm takes rsa or ed25519');
  return value;
}

async function tenantDomain(ctx: CommandContext, stores: LocalStores): Promise<string> {
  const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
  const domain = normaliseDomain(positional(ctx, 0, 'DOMAIN'));
  const served = await stores.configStore.getDomain(domain);
  if (!served || served.tenantId !== tenant.id) throw new NotFoundError(`tenant ${tenant.name} has no domain ${domain}`);
  return domain;
}

export const dkimCommands: Record<string, Command> = {
  add: {
    usage: '--tenant NAME DOMAIN [--selector S] [--algorithm rsa|ed25519]',
    summary: "Generate a DKIM key (RSA-2048 by default) and print the DNS TXT record to publish. The domain's first key becomes its default.",
    options: { ...tenantOption, selector: { type: 'string' }, algorithm: { type: 'string' } },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const domain = await tenantDomain(ctx, stores);
        const key = await addDkimKey(stores.dkimKeys, { domain, selector: stringOption(ctx, 'selector'), algorithm: algorithmOption(ctx), now: stores.clock.now() });
        ctx.out(`selector ${key.selector} (${key.algorithm}${key.isDefault ? ', default' : ''}) for ${domain}; publish:`);
        ctx.out(key.dns.zoneLine);
      });
    },
  },
  rotate: {
    usage: '--tenant NAME DOMAIN [--selector S] [--algorithm rsa|ed25519]',
    summary: 'Make a new key the default; the old selector keeps signing for users that name it until removed.',
    options: { ...tenantOption, selector: { type: 'string' }, algorithm: { type: 'string' } },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const domain = await tenantDomain(ctx, stores);
        const key = await rotateDkimKey(stores.dkimKeys, { domain, selector: stringOption(ctx, 'selector'), algorithm: algorithmOption(ctx), now: stores.clock.now() });
        ctx.out(`new default selector ${key.selector} for ${domain}; publish:`);
        ctx.out(key.dns.zoneLine);
      });
    },
  },
  list: {
    usage: '--tenant NAME',
    summary: "List the tenant's DKIM selectors and their DNS records.",
    options: { ...tenantOption },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const tenant = await tenantNamed(stores, requiredOption(ctx, 'tenant'));
        const rows: string[][] = [];
        const records: string[] = [];
        for (const domain of await stores.configStore.listDomains(tenant.id)) {
          for (const key of await stores.dkimKeys.list(domain.name)) {
            rows.push([domain.name, key.selector, key.algorithm, key.isDefault ? 'yes' : '', formatTime(key.createdAt)]);
            records.push(key.dns.zoneLine);
          }
        }
        table(ctx.out, ['DOMAIN', 'SELECTOR', 'ALGORITHM', 'DEFAULT', 'CREATED'], rows);
        if (records.length > 0) ctx.out('\nDNS records:\n' + records.join('\n'));
      });
    },
  },
  remove: {
    usage: '--tenant NAME DOMAIN --selector S',
    summary: 'Remove a DKIM key (mail for users naming it falls back to the domain default).',
    options: { ...tenantOption, selector: { type: 'string' } },
    async run(ctx) {
      await withStores(ctx, async (stores) => {
        const domain = await tenantDomain(ctx, stores);
        const selector = requiredOption(ctx, 'selector');
        await stores.dkimKeys.remove(domain, selector);
        ctx.out(`selector ${selector} of ${domain} removed`);
      });
    },
  },
};
