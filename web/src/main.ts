// The control panel: a hash-routed single page over the /v1 API. index.html holds the landmarks
// (header, nav, main); this file signs in, builds the navigation and renders one view at a time.
import { api, availableRoutes, session, SIGNED_OUT_EVENT, tenantPath, type Caller } from './api.js';
import type { ViewContext } from './context.js';
import { h, mount } from './dom.js';
import type { Tenant } from './types.js';
import { clearNotices, errorBox, notify } from './ui.js';
import { auditView } from './views/audit.js';
import { defaultsView } from './views/defaults.js';
import { dkimView } from './views/dkim.js';
import { domainsView } from './views/domains.js';
import { locksView } from './views/locks.js';
import { loginView } from './views/login.js';
import { messagesView, messageView } from './views/messages.js';
import { quarantinedView, quarantineView } from './views/quarantine.js';
import { suppressionsView } from './views/suppressions.js';
import { tenantsView } from './views/tenants.js';
import { usersView } from './views/users.js';
import { userView } from './views/user.js';

interface Section {
  hash: string;
  label: string;
  /** The route the section needs; it is hidden when the server does not document it. */
  needs: string;
}

const SECTIONS: Section[] = [
  { hash: '#/users', label: 'Users', needs: 'GET /v1/tenants/{tenantId}/users' },
  { hash: '#/locks', label: 'Locks', needs: 'GET /v1/tenants/{tenantId}/locks' },
  { hash: '#/messages', label: 'Message log', needs: 'GET /v1/tenants/{tenantId}/messages' },
  { hash: '#/quarantine', label: 'Quarantine', needs: 'GET /v1/tenants/{tenantId}/quarantine' },
  { hash: '#/domains', label: 'Domains', needs: 'GET /v1/tenants/{tenantId}/domains' },
  { hash: '#/dkim', label: 'DKIM keys', needs: 'GET /v1/tenants/{tenantId}/dkim-keys' },
  { hash: '#/suppressions', label: 'Suppression list', needs: 'GET /v1/tenants/{tenantId}/suppressions' },
  { hash: '#/defaults', label: 'Defaults', needs: 'GET /v1/tenants/{tenantId}/settings' },
  { hash: '#/audit', label: 'Audit log', needs: 'GET /v1/tenants/{tenantId}/audit' },
];

const main = (): HTMLElement => document.getElementById('main') ?? document.body;
let caller: Caller | undefined;
let routes = new Set<string>();
let tenantName = '';

async function signedIn(): Promise<Caller | undefined> {
  if (caller) return caller;
  if (!session.token()) return undefined;
  try {
    caller = await api<Caller>('GET', '/v1/me');
    routes = await availableRoutes();
    return caller;
  } catch {
    // A revoked key or changed operator token: sign in again.
    session.clear();
    return undefined;
  }
}

function signOut(): void {
  session.clear();
  caller = undefined;
  tenantName = '';
  location.hash = '#/login';
}

function renderChrome(current: string): void {
  const header = document.getElementById('account');
  const nav = document.getElementById('sections');
  if (!header || !nav) return;
  if (!caller) {
    header.replaceChildren();
    nav.replaceChildren();
    nav.hidden = true;
    return;
  }
  const who = caller.role === 'operator' ? 'Operator' : 'Tenant key';
  const out = h('button', { type: 'button', class: 'secondary small' }, 'Sign out');
  out.addEventListener('click', signOut);
  header.replaceChildren(h('span', { class: 'who' }, who, tenantName ? [': ', h('strong', {}, tenantName)] : null), out);
  const tenantId = currentTenant();
  const links: Array<{ hash: string; label: string }> = [];
  if (caller.role === 'operator') links.push({ hash: '#/tenants', label: 'Tenants' });
  if (tenantId) for (const section of SECTIONS) if (routes.has(section.needs)) links.push(section);
  nav.hidden = false;
  nav.replaceChildren(
    h(
      'ul',
      {},
      links.map((link) => h('li', {}, h('a', { href: link.hash, ...(current.startsWith(link.hash) ? { 'aria-current': 'page' } : {}) }, link.label))),
    ),
  );
}

function currentTenant(): string | undefined {
  if (!caller) return undefined;
  return caller.role === 'tenant' ? (caller.tenantId ?? undefined) : (session.tenant() ?? undefined);
}

let renderSeq = 0;

async function render(navigated: boolean): Promise<void> {
  const seq = ++renderSeq;
  const hash = location.hash || '#/users';
  const [path = '', search = ''] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(search);
  if (navigated) clearNotices();

  const who = await signedIn();
  if (!who) {
    renderChrome(hash);
    mount(main(), loginView((signed) => {
      caller = signed;
      void availableRoutes().then((set) => {
        routes = set;
        location.hash = signed.role === 'operator' ? '#/tenants' : '#/users';
        void render(true);
      });
    }));
    focusHeading();
    return;
  }
  const tenantId = currentTenant();
  if (tenantId && !tenantName) {
    tenantName = await api<Tenant>('GET', tenantPath(tenantId)).then((tenant) => tenant.name, () => tenantId);
  }
  renderChrome(hash);
  const ctx: ViewContext | undefined = tenantId ? { caller: who, tenantId, refresh: () => void render(false) } : undefined;

  let view: Promise<HTMLElement>;
  const [first = '', second] = parts;
  if (first === 'tenants' || first === 'login' || (!ctx && who.role === 'operator')) {
    if (who.role !== 'operator') {
      location.hash = '#/users';
      return;
    }
    view = tenantsView(() => void render(false));
  } else if (!ctx) {
    view = Promise.resolve(h('p', {}, 'This key belongs to no tenant.'));
  } else if (first === 'users' && second) view = userView(ctx, second);
  else if (first === 'locks') view = locksView(ctx);
  else if (first === 'domains') view = domainsView(ctx);
  else if (first === 'dkim') view = dkimView(ctx);
  else if (first === 'quarantine' && second) view = quarantinedView(ctx, second);
  else if (first === 'quarantine') view = quarantineView(ctx, params.get('cursor') ?? undefined);
  else if (first === 'messages' && second) view = messageView(ctx, second);
  else if (first === 'messages') view = messagesView(ctx, params);
  else if (first === 'suppressions') view = suppressionsView(ctx);
  else if (first === 'defaults') view = defaultsView(ctx);
  else if (first === 'audit') view = auditView(ctx);
  else view = usersView(ctx, params);

  const busy = navigated ? setTimeout(() => main().setAttribute('aria-busy', 'true'), 150) : undefined;
  let content: HTMLElement;
  try {
    content = await view;
  } catch (error: unknown) {
    content = h('section', {}, h('h1', { tabindex: '-1', class: 'page-heading' }, 'Could not load this page'), errorBox(error));
  } finally {
    clearTimeout(busy);
    main().removeAttribute('aria-busy');
  }
  if (seq !== renderSeq) return; // a newer navigation won
  // Keep the scroll position on refreshes (after a save); reset it on navigation.
  const scroll = window.scrollY;
  mount(main(), content);
  if (navigated) focusHeading();
  else window.scrollTo(0, scroll);
}

function focusHeading(): void {
  const heading = main().querySelector<HTMLElement>('.page-heading');
  heading?.focus({ preventScroll: false });
}

window.addEventListener('hashchange', () => void render(true));
window.addEventListener(SIGNED_OUT_EVENT, (event) => {
  caller = undefined;
  tenantName = '';
  const detail = event instanceof CustomEvent && typeof event.detail === 'string' ? event.detail : '';
  notify(`Signed out: ${detail || 'the token is no longer accepted'}. Sign in again.`, 'error');
  void render(false);
});
void render(true);
