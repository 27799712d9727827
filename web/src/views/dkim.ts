// DKIM keys per domain, each with the DNS TXT record to publish and copy buttons.
import { api, tenantPath, type Page } from '../api.js';
import type { ViewContext } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { DkimKey, Domain } from '../types.js';
import { copyButton, notify, onClick, onSubmit, pageHeading } from '../ui.js';

export async function dkimView(ctx: ViewContext): Promise<HTMLElement> {
  const [keys, domains] = await Promise.all([
    api<Page<DkimKey>>('GET', tenantPath(ctx.tenantId, 'dkim-keys'), { query: { limit: 500 } }),
    api<Page<Domain>>('GET', tenantPath(ctx.tenantId, 'domains'), { query: { limit: 500 } }),
  ]);
  const cards = keys.items.map((key) =>
    h(
      'article',
      { class: 'card dkim', 'aria-label': `DKIM key ${key.selector} of ${key.domain}` },
      h('h2', {}, `${key.domain} — `, h('code', {}, key.selector), key.isDefault ? h('span', { class: 'badge ok' }, 'default') : null),
      h('p', { class: 'muted' }, `${key.algorithm === 'rsa' ? 'RSA 2048' : 'Ed25519'}, created ${formatTime(key.createdAt)}`),
      h('p', {}, 'Publish this TXT record before the key signs:'),
      dnsLine('Record name', key.dns.name),
      dnsLine('TXT value', key.dns.value),
      dnsLine('Zone-file line', key.dns.zoneLine),
      h(
        'div',
        { class: 'actions' },
        onClick(h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete DKIM key ${key.selector} of ${key.domain}` }, 'Delete key'), async () => {
          if (!confirm(`Delete the DKIM key ${key.selector} of ${key.domain}?`)) return;
          await api('DELETE', tenantPath(ctx.tenantId, 'domains', key.domain, 'dkim-keys', key.selector));
          notify(`Key ${key.selector} of ${key.domain} deleted.`);
          ctx.refresh();
        }),
      ),
    ),
  );
  return h(
    'section',
    {},
    pageHeading('DKIM keys'),
    cards.length ? cards : h('p', { class: 'empty' }, 'No DKIM keys yet.'),
    domains.items.length ? createForm(ctx, domains.items) : h('p', { class: 'notice' }, 'Add a domain first: ', h('a', { href: '#/domains' }, 'Domains'), '.'),
  );
}

function dnsLine(label: string, value: string): HTMLElement {
  const area = h('textarea', { readonly: true, rows: value.length > 120 ? 4 : 1, spellcheck: 'false', class: 'dns' });
  area.value = value;
  return h('div', { class: 'dns-line' }, field(label, area), copyButton(value, label.toLowerCase()));
}

function createForm(ctx: ViewContext, domains: Domain[]): HTMLFormElement {
  const domain = h('select', { name: 'domain', required: true }, domains.map((item) => h('option', { value: item.name }, item.name)));
  const selector = h('input', { name: 'selector', autocomplete: 'off', spellcheck: 'false', placeholder: 'generated (oYYYYMMDD)' });
  const algorithm = h('select', { name: 'algorithm' }, h('option', { value: 'rsa' }, 'RSA 2048 (widest support)'), h('option', { value: 'ed25519' }, 'Ed25519'));
  const rotate = h('input', { type: 'checkbox', name: 'rotate', id: 'dkim-rotate' });
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Create or rotate a DKIM key' },
    h('h2', {}, 'New key'),
    field('Domain', domain),
    field('Selector (optional)', selector),
    field('Algorithm', algorithm),
    h('div', { class: 'check' }, rotate, h('label', { for: rotate.id }, 'Rotate: make the new key the default (older keys stay until deleted, so DNS can catch up)')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create key')),
  );
  onSubmit(form, async () => {
    const body: Record<string, unknown> = { algorithm: algorithm.value };
    if (selector.value.trim()) body['selector'] = selector.value.trim();
    const path = rotate.checked ? tenantPath(ctx.tenantId, 'domains', domain.value, 'dkim-keys', 'rotate') : tenantPath(ctx.tenantId, 'domains', domain.value, 'dkim-keys');
    const key = await api<DkimKey>('POST', path, { body });
    notify(`Key ${key.selector} of ${key.domain} created: publish its DNS record.`);
    ctx.refresh();
  });
  return form;
}
