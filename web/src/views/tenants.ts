// Operator only: the tenants, creating one, suspending, and issuing or revoking its API keys.
import { api, session, tenantPath, type Page } from '../api.js';
import { go } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { ApiKey, AuditEntry, CreatedApiKey, Tenant } from '../types.js';
import { errorBox, notify, onClick, onSubmit, pageHeading, shownOnce, table } from '../ui.js';

export async function tenantsView(refresh: () => void): Promise<HTMLElement> {
  const tenants = await api<Page<Tenant>>('GET', '/v1/tenants', { query: { limit: 500 } });
  // Deployments without an audit log answer 501: the section is left out then.
  const audit = await api<Page<AuditEntry>>('GET', '/v1/audit', { query: { limit: 20 } }).catch(() => undefined);
  const secret = h('div', {});

  const name = h('input', { name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const create = h(
    'form',
    { class: 'card inline', 'aria-label': 'Create a tenant' },
    h('h2', {}, 'Create a tenant'),
    field('Tenant name', name, 'Letters, digits, spaces, dots, underscores and hyphens.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create tenant')),
  );
  onSubmit(create, async () => {
    const tenant = await api<Tenant>('POST', '/v1/tenants', { body: { name: name.value } });
    notify(`Tenant ${tenant.name} created.`);
    refresh();
  });

  const rows = tenants.items.map((tenant) => {
    const open = h('button', { type: 'button', 'aria-label': `Manage tenant ${tenant.name}` }, 'Manage');
    open.addEventListener('click', () => {
      session.setTenant(tenant.id);
      go('#/users');
    });
    const suspend = onClick(
      h('button', { type: 'button', class: 'secondary', 'aria-label': `${tenant.suspended ? 'Unsuspend' : 'Suspend'} tenant ${tenant.name}` }, tenant.suspended ? 'Unsuspend' : 'Suspend'),
      async () => {
        await api('PATCH', tenantPath(tenant.id), { body: { suspended: !tenant.suspended } });
        refresh();
      },
    );
    const keysBox = h('div', { class: 'keys' }, 'Loading…');
    const keys = h('details', {}, h('summary', {}, 'API keys'), keysBox);
    keys.addEventListener('toggle', () => {
      if (keys.open) void renderKeys(tenant, keysBox, secret);
    });
    return [
      h('strong', {}, tenant.name),
      h('code', {}, tenant.id),
      tenant.suspended ? h('span', { class: 'badge locked' }, 'suspended') : h('span', { class: 'badge ok' }, 'active'),
      h('div', { class: 'row-actions' }, open, suspend),
      keys,
    ];
  });

  return h(
    'section',
    {},
    pageHeading('Tenants'),
    h('p', {}, 'You are signed in with the operator token. Pick a tenant to manage its users, or issue a tenant API key.'),
    secret,
    table('Tenants', ['Name', 'Id', 'State', 'Actions', 'Keys'], rows, 'No tenants yet: create the first one below.'),
    create,
    audit ? auditCard(audit.items, new Map(tenants.items.map((tenant) => [tenant.id, tenant.name]))) : null,
  );
}

/** The latest audit entries of every tenant (a tenant's own are on its Audit log page). */
function auditCard(entries: AuditEntry[], names: Map<string, string>): HTMLElement {
  const rows = entries.map((entry) => [formatTime(entry.at), entry.tenantId ? (names.get(entry.tenantId) ?? entry.tenantId) : '—', entry.actor, h('code', {}, entry.action), entry.target]);
  // Folded: the page is about tenants; the log is there for the operator who looks for it.
  return h('details', { class: 'card' }, h('summary', {}, 'Recent changes (audit log)'), table('Recent changes', ['When', 'Tenant', 'Who', 'Action', 'What'], rows, 'Nothing recorded yet.'));
}

async function renderKeys(tenant: Tenant, box: HTMLElement, secret: HTMLElement): Promise<void> {
  try {
    const keys = await api<Page<ApiKey>>('GET', tenantPath(tenant.id, 'keys'), { query: { limit: 500 } });
    const keyName = h('input', { name: 'keyName', required: true, maxlength: 100, value: 'control panel' });
    const issue = h('form', { class: 'inline', 'aria-label': `Issue an API key for ${tenant.name}` }, field('Key name', keyName), h('button', { type: 'submit' }, 'Issue key'));
    onSubmit(issue, async () => {
      const created = await api<CreatedApiKey>('POST', tenantPath(tenant.id, 'keys'), { body: { name: keyName.value } });
      secret.replaceChildren(shownOnce(`API key "${created.name}" of ${tenant.name}`, created.key));
      await renderKeys(tenant, box, secret);
    });
    box.replaceChildren(
      h(
        'ul',
        { class: 'plain' },
        keys.items.map((key) =>
          h(
            'li',
            {},
            `${key.name} (`,
            h('code', {}, key.id),
            `), created ${formatTime(key.createdAt)}, last used ${formatTime(key.lastUsedAt)} `,
            onClick(h('button', { type: 'button', class: 'small danger', 'aria-label': `Revoke key ${key.name}` }, 'Revoke'), async () => {
              if (!confirm(`Revoke the key "${key.name}"? Programs using it stop working at once.`)) return;
              await api('DELETE', tenantPath(tenant.id, 'keys', key.id));
              await renderKeys(tenant, box, secret);
            }),
          ),
        ),
      ),
      issue,
    );
  } catch (error: unknown) {
    box.replaceChildren(errorBox(error));
  }
}
