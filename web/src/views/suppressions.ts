// Recipients mail is not sent to (hard bounces, and addresses added by hand).
import { api, tenantPath, type Page } from '../api.js';
import type { ViewContext } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { Suppression } from '../types.js';
import { notify, onClick, onSubmit, pageHeading, table } from '../ui.js';

export async function suppressionsView(ctx: ViewContext): Promise<HTMLElement> {
  const list = await api<Page<Suppression>>('GET', tenantPath(ctx.tenantId, 'suppressions'), { query: { limit: 500 } });
  const address = h('input', { name: 'address', type: 'email', required: true, autocomplete: 'off' });
  const reason = h('input', { name: 'reason', maxlength: 500, autocomplete: 'off' });
  const form = h('form', { class: 'card', 'aria-label': 'Add a suppressed recipient' }, h('h2', {}, 'Add a recipient'), field('Recipient address', address), field('Reason (optional)', reason), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Suppress')));
  onSubmit(form, async () => {
    await api('POST', tenantPath(ctx.tenantId, 'suppressions'), { body: { address: address.value.trim(), reason: reason.value } });
    notify(`${address.value.trim()} added to the suppression list.`);
    ctx.refresh();
  });
  const rows = list.items.map((entry) => [
    entry.address,
    entry.source,
    entry.reason || '—',
    entry.expiresAt ? formatTime(entry.expiresAt) : 'until removed',
    onClick(h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${entry.address}` }, 'Remove'), async () => {
      await api('DELETE', tenantPath(ctx.tenantId, 'suppressions', entry.address));
      notify(`${entry.address} removed.`);
      ctx.refresh();
    }),
  ]);
  return h('section', {}, pageHeading('Suppression list'), h('p', {}, 'Mail to these recipients is refused (550 5.1.1).'), table('Suppressed recipients', ['Address', 'Source', 'Reason', 'Expires', ''], rows, 'No suppressed recipients.'), form);
}
