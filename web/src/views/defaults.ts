// The tenant's default settings: what applies to every user that does not override a key.
import { api, tenantPath } from '../api.js';
import type { ViewContext } from '../context.js';
import { h } from '../dom.js';
import type { SettingsView } from '../types.js';
import { notify, pageHeading } from '../ui.js';
import { settingsForm } from './settings-form.js';

export async function defaultsView(ctx: ViewContext): Promise<HTMLElement> {
  const path = tenantPath(ctx.tenantId, 'settings');
  const box = h('div', {});
  const render = (view: SettingsView): void => {
    box.replaceChildren(
      settingsForm(view, 'tenant', (patch) => api<SettingsView>('PATCH', path, { body: patch }), (next) => {
        render(next);
        notify('Tenant defaults saved.');
      }),
    );
  };
  render(await api<SettingsView>('GET', path));
  return h('section', {}, pageHeading('Default settings'), h('p', {}, 'These apply to every user of the tenant that does not set its own value.'), box);
}
