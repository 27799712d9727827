// Held messages: list with reasons, view (envelope, header fields, reasons — never the body),
// release (delivered as it is) or delete.
import { api, tenantPath, type Page } from '../api.js';
import { go, type ViewContext } from '../context.js';
import { formatTime, h } from '../dom.js';
import type { Quarantined, QuarantinedDetail } from '../types.js';
import { notify, onClick, pageHeading, table } from '../ui.js';

export async function quarantineView(ctx: ViewContext, cursor?: string): Promise<HTMLElement> {
  const page = await api<Page<Quarantined>>('GET', tenantPath(ctx.tenantId, 'quarantine'), { query: { limit: 50, cursor } });
  const rows = page.items.map((item) => [
    h('a', { href: `#/quarantine/${encodeURIComponent(item.messageId)}` }, item.subject ?? '(no subject)'),
    item.identity,
    h('span', { class: `badge ${item.kind === 'virus' ? 'locked' : 'warn'}` }, item.kind),
    item.reasons.map((reason) => reason.name).join(', '),
    formatTime(item.quarantinedAt),
  ]);
  const next = page.nextCursor;
  return h(
    'section',
    {},
    pageHeading('Quarantine'),
    h('p', {}, 'Messages held by a scan verdict. Open one to see why, then release it (it is delivered as it is) or delete it.'),
    table('Held messages', ['Subject', 'User', 'Verdict', 'Reasons', 'Held at'], rows, 'Nothing is held.'),
    next ? h('p', {}, h('a', { href: `#/quarantine?cursor=${encodeURIComponent(next)}` }, 'Older messages →')) : null,
  );
}

export async function quarantinedView(ctx: ViewContext, messageId: string): Promise<HTMLElement> {
  const path = tenantPath(ctx.tenantId, 'quarantine', messageId);
  const item = await api<QuarantinedDetail>('GET', path);
  return h(
    'section',
    {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/quarantine' }, '← Quarantine')),
    pageHeading(item.subject ?? '(no subject)'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Queue id'),
      h('dd', {}, h('code', {}, item.messageId)),
      h('dt', {}, 'User'),
      h('dd', {}, h('a', { href: `#/users/${encodeURIComponent(item.userId)}` }, item.identity)),
      h('dt', {}, 'Envelope sender'),
      h('dd', {}, item.mailFrom || '<>'),
      h('dt', {}, 'Recipients'),
      h('dd', {}, item.rcptTo.join(', ')),
      h('dt', {}, 'Size'),
      h('dd', {}, `${item.size} bytes`),
      h('dt', {}, 'Received'),
      h('dd', {}, formatTime(item.receivedAt)),
      h('dt', {}, 'Held'),
      h('dd', {}, `${formatTime(item.quarantinedAt)} (${item.kind})`),
    ),
    h('h2', {}, 'Why it is held'),
    h('ul', {}, item.explanation.map((line) => h('li', {}, line))),
    h('ul', { class: 'reasons' }, item.reasons.map((reason) => h('li', {}, h('code', {}, reason.name), reason.score !== undefined ? ` (score ${reason.score})` : ''))),
    h('h2', {}, 'Header fields'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'headers' }, h('caption', { class: 'visually-hidden' }, 'Header fields'), h('tbody', {}, item.headers.map((field) => h('tr', {}, h('th', { scope: 'row' }, field.name), h('td', {}, field.value)))))),
    h(
      'div',
      { class: 'actions' },
      onClick(h('button', { type: 'button' }, 'Release and deliver'), async () => {
        if (!confirm('Deliver this message as it is, without scanning it again?')) return;
        await api('POST', `${path}/release`);
        notify(`Message ${item.messageId} released for delivery.`);
        go('#/quarantine');
      }),
      onClick(h('button', { type: 'button', class: 'danger' }, 'Delete'), async () => {
        if (!confirm('Delete this message for good?')) return;
        await api('DELETE', path);
        notify(`Message ${item.messageId} deleted.`);
        go('#/quarantine');
      }),
    ),
  );
}
