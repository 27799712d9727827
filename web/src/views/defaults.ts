// The tenant's default settings: what applies to every user that does not override a key, and the
// operator's ceilings that bound them.
import { api, tenantPath } from '../api.js';
import type { ViewContext } from '../context.js';
import { h } from '../dom.js';
import type { CeilingsView, SettingsView } from '../types.js';
import { notify, pageHeading, table } from '../ui.js';
import { settingsForm } from './settings-form.js';

function ceilingsCard(view: CeilingsView): HTMLElement {
  const rows = Object.entries(view.ceilings).map(([key, value]) => [
    h('code', { class: 'key' }, key),
    typeof value === 'boolean' ? `forced ${value ? 'on' : 'off'}` : `at most ${String(value)}${key === 'spamThreshold' || key === 'maxMessageBytes' || key === 'maxTimedUnlocks' ? '' : ' (0, no limit, is above it)'}`,
  ]);
  return h(
    'div',
    { class: 'card', 'aria-label': 'Ceilings set by the operator' },
    h('h2', {}, 'Ceilings set by the operator'),
    h('p', {}, 'Settings of this tenant and its users cannot go beyond these; values above them are lowered to them.'),
    table('Ceilings', ['Setting', 'Ceiling'], rows, 'The operator has set no ceilings.'),
  );
}

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
  const [settings, ceilings] = await Promise.all([api<SettingsView>('GET', path), api<CeilingsView>('GET', tenantPath(ctx.tenantId, 'ceilings'))]);
  render(settings);
  return h('section', {}, pageHeading('Default settings'), ceilingsCard(ceilings), h('p', {}, 'These apply to every user of the tenant that does not set its own value.'), box);
}
