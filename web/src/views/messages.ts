// The message log: search by sender, recipient, status, time range, user, or open a queue id.
import { api, tenantPath, type Page } from '../api.js';
import { go, type ViewContext } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { Message, MessageDetail } from '../types.js';
import { onSubmit, pageHeading, table } from '../ui.js';

const STATUSES = ['received', 'queued', 'scanning', 'deferred', 'delivered', 'partially-delivered', 'bounced', 'quarantined', 'refused', 'expired', 'held-locked', 'held-manual', 'purged'];
const SEARCH_KEYS = ['sender', 'recipient', 'status', 'from', 'to', 'userId', 'cursor'] as const;

/** datetime-local (no zone) -> ISO with offset, in the browser's zone. */
const toIso = (local: string): string | undefined => (local ? new Date(local).toISOString() : undefined);
const toLocal = (iso: string | null): string => {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export async function messagesView(ctx: ViewContext, params: URLSearchParams): Promise<HTMLElement> {
  const query: Record<string, string> = {};
  for (const key of SEARCH_KEYS) {
    const value = params.get(key);
    if (value) query[key] = value;
  }
  const sender = h('input', { name: 'sender', type: 'text', autocomplete: 'off', value: query['sender'] ?? '' });
  const recipient = h('input', { name: 'recipient', type: 'text', autocomplete: 'off', value: query['recipient'] ?? '' });
  const status = h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s, selected: s === query['status'] }, s)));
  const from = h('input', { name: 'from', type: 'datetime-local', value: toLocal(query['from'] ?? null) });
  const to = h('input', { name: 'to', type: 'datetime-local', value: toLocal(query['to'] ?? null) });
  const queueId = h('input', { name: 'queueId', type: 'text', autocomplete: 'off', spellcheck: 'false' });

  const search = h(
    'form',
    { class: 'card search', role: 'search', 'aria-label': 'Search the message log' },
    h('div', { class: 'grid' }, field('Sender', sender, 'Envelope sender, exact.'), field('Recipient', recipient, 'One recipient, exact.'), field('Status', status), field('From (your time)', from), field('To (your time)', to)),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search')),
  );
  onSubmit(search, async () => {
    const next = new URLSearchParams();
    if (sender.value.trim()) next.set('sender', sender.value.trim());
    if (recipient.value.trim()) next.set('recipient', recipient.value.trim());
    if (status.value) next.set('status', status.value);
    const fromIso = toIso(from.value);
    const toIsoValue = toIso(to.value);
    if (fromIso) next.set('from', fromIso);
    if (toIsoValue) next.set('to', toIsoValue);
    if (query['userId']) next.set('userId', query['userId']);
    go(`#/messages?${next.toString()}`);
  });
  const open = h('form', { class: 'card inline', 'aria-label': 'Open a message by queue id' }, field('Queue id', queueId, 'As in "250 2.0.0 queued as ID".'), h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Open')));
  onSubmit(open, async () => {
    const id = queueId.value.trim();
    if (!id) throw new Error('Enter a queue id.');
    await api<MessageDetail>('GET', tenantPath(ctx.tenantId, 'messages', id));
    go(`#/messages/${encodeURIComponent(id)}`);
  });

  const page = await api<Page<Message>>('GET', tenantPath(ctx.tenantId, 'messages'), { query: { ...query, limit: 50 } });
  const rows = page.items.map((message) => [
    h('a', { href: `#/messages/${encodeURIComponent(message.id)}` }, h('code', {}, message.id)),
    formatTime(message.receivedAt),
    message.mailFrom || '<>',
    message.rcptTo.join(', '),
    message.subject ?? '—',
    h('span', { class: `badge status-${message.status}` }, message.status),
  ]);
  const nextLink = page.nextCursor
    ? h('p', {}, h('a', { href: `#/messages?${new URLSearchParams({ ...query, cursor: page.nextCursor }).toString()}` }, 'Older messages →'))
    : null;
  const scope = query['userId'] ? h('p', {}, 'Only the messages of one user. ', h('a', { href: '#/messages' }, 'Show all users')) : null;
  return h('section', {}, pageHeading('Message log'), scope, search, open, table('Messages', ['Queue id', 'Received', 'Sender', 'Recipients', 'Subject', 'Status'], rows, 'No message matches.'), nextLink);
}

export async function messageView(ctx: ViewContext, messageId: string): Promise<HTMLElement> {
  const detail = await api<MessageDetail>('GET', tenantPath(ctx.tenantId, 'messages', messageId));
  const m = detail.message;
  return h(
    'section',
    {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/messages' }, '← Message log')),
    pageHeading(m.subject ?? '(no subject)'),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Queue id'),
      h('dd', {}, h('code', {}, m.id)),
      h('dt', {}, 'Status'),
      h('dd', {}, h('span', { class: `badge status-${m.status}` }, m.status)),
      h('dt', {}, 'User'),
      h('dd', {}, m.userId ? h('a', { href: `#/users/${encodeURIComponent(m.userId)}` }, m.identity ?? m.userId) : '—'),
      h('dt', {}, 'Sender'),
      h('dd', {}, m.mailFrom || '<>'),
      h('dt', {}, 'Recipients'),
      h('dd', {}, m.rcptTo.join(', ')),
      h('dt', {}, 'Size'),
      h('dd', {}, `${m.size} bytes`),
      h('dt', {}, 'Received'),
      h('dd', {}, formatTime(m.receivedAt)),
    ),
    h('h2', {}, 'Events'),
    h(
      'ol',
      { class: 'history' },
      detail.events.map((event) => h('li', {}, h('strong', {}, event.event), ` ${formatTime(event.at)} `, h('code', { class: 'detail' }, JSON.stringify(event.detail)))),
    ),
  );
}
