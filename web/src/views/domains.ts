// The tenant's sending domains: mailbox and domain users must belong to one of them.
import { api, tenantPath, type Page } from '../api.js';
import type { ViewContext } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { Domain } from '../types.js';
import { notify, onClick, onSubmit, pageHeading, table } from '../ui.js';

export async function domainsView(ctx: ViewContext): Promise<HTMLElement> {
  const domains = await api<Page<Domain>>('GET', tenantPath(ctx.tenantId, 'domains'), { query: { limit: 500 } });
  const name = h('input', { name: 'domain', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'example.com' });
  const form = h('form', { class: 'card inline', 'aria-label': 'Add a domain' }, field('Domain name', name), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add domain')));
  onSubmit(form, async () => {
    const domain = await api<Domain>('POST', tenantPath(ctx.tenantId, 'domains'), { body: { name: name.value.trim() } });
    notify(`${domain.name} added. Create its DKIM key under DKIM keys.`);
    ctx.refresh();
  });
  const rows = domains.items.map((domain) => [
    domain.name,
    formatTime(domain.createdAt),
    onClick(h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${domain.name}` }, 'Remove'), async () => {
      if (!confirm(`Remove ${domain.name}?`)) return;
      await api('DELETE', tenantPath(ctx.tenantId, 'domains', domain.name));
      notify(`${domain.name} removed.`);
      ctx.refresh();
    }),
  ]);
  return h('section', {}, pageHeading('Domains'), table('Domains', ['Domain', 'Added', ''], rows, 'No domains yet.'), form);
}
