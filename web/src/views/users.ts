// The users table (identity, kind, lock state, volume today) and the form to create a user of
// any of the three kinds.
import { api, tenantPath, type Page } from '../api.js';
import { go } from '../context.js';
import type { ViewContext } from '../context.js';
import { field, h, type Child } from '../dom.js';
import type { CreatedUser, Domain, Stats, UserSummary } from '../types.js';
import { volumeChart } from '../chart.js';
import { lockBadge, notify, onSubmit, pageHeading, secretContent, table } from '../ui.js';

const KINDS = {
  mailbox: { label: 'Mailbox', example: 'alice@example.com', help: 'One address with its own password (SMTP AUTH on port 587 or 465).' },
  domain: { label: 'Domain', example: 'example.com', help: 'The domain name is the user name; may send as any address of the domain.' },
  ip: { label: 'IP range', example: '192.0.2.0/24', help: 'A source IP or CIDR range, no password: smarthost traffic from your own mail server.' },
} as const;
type Kind = keyof typeof KINDS;

const PAGE_SIZE = 200;

export async function usersView(ctx: ViewContext, params: URLSearchParams): Promise<HTMLElement> {
  const kind = params.get('kind') ?? '';
  const cursor = params.get('cursor') ?? undefined;
  const [users, domains, stats] = await Promise.all([
    api<Page<UserSummary>>('GET', tenantPath(ctx.tenantId, 'users'), { query: { limit: PAGE_SIZE, cursor, kind } }),
    api<Page<Domain>>('GET', tenantPath(ctx.tenantId, 'domains'), { query: { limit: 500 } }),
    api<Stats>('GET', tenantPath(ctx.tenantId, 'stats'), { query: { bucket: 'hour' } }),
  ]);
  const rows = users.items.map((user) => [
    h('a', { href: `#/users/${encodeURIComponent(user.id)}` }, user.identity),
    KINDS[user.kind].label,
    lockBadge(user.lock),
    h('span', {}, String(user.today.messages), h('span', { class: 'muted' }, ` (${user.today.recipients} recipients)`)),
  ]);

  const kindFilter = h('select', { name: 'kind', id: 'users-kind' }, h('option', { value: '' }, 'all kinds'), (Object.keys(KINDS) as Kind[]).map((k) => h('option', { value: k, selected: k === kind }, KINDS[k].label)));
  kindFilter.addEventListener('change', () => go(kindFilter.value ? `#/users?kind=${kindFilter.value}` : '#/users'));
  const next = users.nextCursor ? `#/users?${new URLSearchParams({ ...(kind ? { kind } : {}), cursor: users.nextCursor }).toString()}` : undefined;
  return h(
    'section',
    {},
    pageHeading('Outgoing users'),
    h('div', { class: 'filter' }, h('label', { for: kindFilter.id }, 'Show'), kindFilter),
    table('Outgoing users', ['Identity', 'Kind', 'State', 'Mails today'], rows, kind ? 'No user of this kind.' : 'No outgoing users yet: create one below.'),
    next || cursor ? h('p', { class: 'pager' }, cursor ? h('a', { href: kind ? `#/users?kind=${kind}` : '#/users' }, '← First page') : null, ' ', next ? h('a', { href: next }, 'Next page →') : null) : null,
    createUserForm(ctx, domains.items),
    h('h2', {}, 'Tenant volume, last 24 hours'),
    h('figure', { class: 'chart-box' }, volumeChart(stats, 'Mails of the tenant per hour'), h('figcaption', { class: 'muted' }, legend())),
  );
}

export function legend(): Child[] {
  return [h('span', { class: 'swatch' }), ' delivered or pending ', h('span', { class: 'swatch refused' }), ' not delivered (refused, quarantined, bounced, expired)'];
}

function createUserForm(ctx: ViewContext, domains: Domain[]): HTMLFormElement {
  const identity = h('input', { name: 'identity', required: true, autocomplete: 'off', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: 8 });
  const passwordField = field('Password (optional)', password, 'At least 8 characters. Leave empty to have a strong one generated and shown once.');
  const identityHelp = h('span', {});
  const kindRadios = (Object.keys(KINDS) as Kind[]).map((kind, index) => {
    const radio = h('input', { type: 'radio', name: 'kind', value: kind, id: `kind-${kind}`, checked: index === 0 });
    radio.addEventListener('change', () => setKind(kind));
    return h('span', { class: 'radio' }, radio, h('label', { for: radio.id }, KINDS[kind].label));
  });
  let current: Kind = 'mailbox';
  const setKind = (kind: Kind): void => {
    current = kind;
    identity.placeholder = KINDS[kind].example;
    identityHelp.textContent = `${KINDS[kind].help}${kind !== 'ip' && domains.length > 0 ? ` Domains of this tenant: ${domains.map((d) => d.name).join(', ')}.` : ''}`;
    passwordField.hidden = kind === 'ip';
  };
  setKind('mailbox');

  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Create an outgoing user' },
    h('h2', {}, 'Create an outgoing user'),
    h('fieldset', { class: 'kinds' }, h('legend', {}, 'Kind of user'), kindRadios),
    field('Identity', identity, identityHelp),
    passwordField,
    domains.length === 0 ? h('p', { class: 'notice' }, 'Mailbox and domain users need one of the tenant\u2019s domains: ', h('a', { href: '#/domains' }, 'add a domain'), ' first.') : null,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create user')),
  );
  onSubmit(form, async () => {
    const value = identity.value.trim();
    // The API infers the kind from the identity; check they agree so a typo does not create the wrong kind.
    const looksLike: Kind = value.includes('@') ? 'mailbox' : /^[\d.]+(\/\d+)?$|:/.test(value) ? 'ip' : 'domain';
    if (looksLike !== current) throw new Error(`"${value}" looks like a ${KINDS[looksLike].label.toLowerCase()} identity, not a ${KINDS[current].label.toLowerCase()} one; e.g. ${KINDS[current].example}`);
    const body: Record<string, unknown> = { identity: value };
    if (current !== 'ip' && password.value !== '') body['password'] = password.value;
    const created = await api<CreatedUser>('POST', tenantPath(ctx.tenantId, 'users'), { body });
    if (created.generatedPassword) {
      // Stay on the page until the password is copied: it is shown once.
      notify(secretContent(`Password of ${created.identity}`, created.generatedPassword), 'secret');
      ctx.refresh();
    } else {
      notify(`User ${created.identity} created.`);
      go(`#/users/${encodeURIComponent(created.id)}`);
    }
  });
  return form;
}
