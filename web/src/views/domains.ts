// The tenant's sending domains: mailbox and domain users must belong to one of them. A domain added
// with a tenant key is pending until the TXT record shown here is published and verified.
import { api, tenantPath, type Page } from '../api.js';
import type { ViewContext } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { Domain } from '../types.js';
import { copyButton, notify, onClick, onSubmit, pageHeading, table } from '../ui.js';

function stateCell(domain: Domain): HTMLElement {
  return domain.state === 'verified' ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge warn' }, 'pending');
}

function recordCell(domain: Domain): HTMLElement | string {
  if (!domain.verification) return '—';
  const line = `${domain.verification.name}. IN TXT "${domain.verification.value}"`;
  return h('div', { class: 'record' }, h('code', { 'aria-label': `TXT record for ${domain.name}` }, line), ' ', copyButton(line, `the TXT record of ${domain.name}`));
}

export async function domainsView(ctx: ViewContext): Promise<HTMLElement> {
  const domains = await api<Page<Domain>>('GET', tenantPath(ctx.tenantId, 'domains'), { query: { limit: 500 } });
  const name = h('input', { name: 'domain', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'example.com' });
  const form = h('form', { class: 'card inline', 'aria-label': 'Add a domain' }, field('Domain name', name), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add domain')));
  onSubmit(form, async () => {
    const domain = await api<Domain>('POST', tenantPath(ctx.tenantId, 'domains'), { body: { name: name.value.trim() } });
    notify(domain.state === 'verified' ? `${domain.name} added. Create its DKIM key under DKIM keys.` : `${domain.name} is pending: publish its TXT record, then verify it.`);
    ctx.refresh();
  });
  const rows = domains.items.map((domain) => [
    domain.name,
    stateCell(domain),
    recordCell(domain),
    formatTime(domain.createdAt),
    h(
      'div',
      { class: 'row-actions' },
      domain.state === 'pending'
        ? onClick(h('button', { type: 'button', class: 'small', 'aria-label': `Verify ${domain.name}` }, 'Verify'), async () => {
            await api('POST', tenantPath(ctx.tenantId, 'domains', domain.name, 'verify'));
            notify(`${domain.name} is verified.`);
            ctx.refresh();
          })
        : null,
      onClick(h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${domain.name}` }, 'Remove'), async () => {
        if (!confirm(`Remove ${domain.name}?`)) return;
        await api('DELETE', tenantPath(ctx.tenantId, 'domains', domain.name));
        notify(`${domain.name} removed.`);
        ctx.refresh();
      }),
    ),
  ]);
  return h(
    'section',
    {},
    pageHeading('Domains'),
    h('p', {}, 'A domain you add is pending until you prove it: publish its TXT record in your DNS, then press Verify. Pending domains cannot be sent from or signed for.'),
    table('Domains', ['Domain', 'State', 'Verification record', 'Added', ''], rows, 'No domains yet.'),
    form,
  );
}
