// The form for every setting of the seed, used for one user and for the tenant defaults. Each
// field shows its explanation (from core/settings.ts), where its current value comes from, and
// a button to drop the override. Only the fields the person changed are sent.
import { ApiError } from '../api.js';
import { h, uid } from '../dom.js';
import { settingsMeta, type SettingMeta } from '../settings-meta.js';
import type { SettingsView } from '../types.js';
import { errorBox, onSubmit } from '../ui.js';

type Patch = Record<string, unknown>;

function control(meta: SettingMeta, value: unknown): HTMLInputElement {
  const input = h('input', { name: meta.key, id: uid(`setting-${meta.key}`) });
  switch (meta.type) {
    case 'boolean':
      input.type = 'checkbox';
      input.checked = value === true;
      break;
    case 'count':
    case 'number':
      input.type = 'number';
      input.inputMode = meta.type === 'count' ? 'numeric' : 'decimal';
      input.step = meta.type === 'count' ? '1' : 'any';
      if (meta.min !== undefined) input.min = String(meta.min);
      input.value = typeof value === 'number' ? String(value) : '';
      input.required = true;
      break;
    case 'domains':
      input.type = 'text';
      input.placeholder = 'example.com, example.org';
      input.value = Array.isArray(value) ? value.join(', ') : '';
      break;
    case 'selector':
      input.type = 'text';
      input.placeholder = "empty: the domain's default key";
      input.value = typeof value === 'string' ? value : '';
      break;
  }
  return input;
}

function readControl(meta: SettingMeta, input: HTMLInputElement): unknown {
  switch (meta.type) {
    case 'boolean':
      return input.checked;
    case 'count':
    case 'number':
      return input.value.trim() === '' ? Number.NaN : Number(input.value);
    case 'domains':
      return input.value
        .split(/[\s,]+/)
        .map((item) => item.trim())
        .filter(Boolean);
    case 'selector':
      return input.value.trim() === '' ? null : input.value.trim();
  }
}

const show = (value: unknown): string => (Array.isArray(value) ? (value.length ? value.join(', ') : 'none') : value === null ? 'none' : typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value));

/**
 * @param level 'user' or 'tenant' (only changes the wording of where a value comes from)
 * @param save sends a PATCH (null drops an override) and returns the new view
 */
export function settingsForm(view: SettingsView, level: 'user' | 'tenant', save: (patch: Patch) => Promise<SettingsView>, onSaved: (next: SettingsView) => void): HTMLFormElement {
  const overrides: Record<string, unknown> = view.overrides;
  const effective: Record<string, unknown> = view.effective;
  const dirty = new Set<string>();
  const inputs = new Map<string, HTMLInputElement>();
  const inherited = level === 'user' ? 'tenant default' : 'deployment default';

  const rows = settingsMeta.map((meta) => {
    const input = control(meta, effective[meta.key]);
    inputs.set(meta.key, input);
    input.addEventListener('input', () => dirty.add(meta.key));
    input.addEventListener('change', () => dirty.add(meta.key));
    const helpId = uid('help');
    const sourceId = uid('source');
    input.setAttribute('aria-describedby', `${helpId} ${sourceId}`);
    const isSet = Object.prototype.hasOwnProperty.call(overrides, meta.key);
    const reset = isSet
      ? h('button', { type: 'button', class: 'small link', 'aria-label': `Use the ${inherited} for ${meta.title}` }, `use ${inherited}`)
      : null;
    reset?.addEventListener('click', () => {
      save({ [meta.key]: null }).then(onSaved, (error: unknown) => form.querySelector('.form-status')?.replaceChildren(errorBox(error)));
    });
    const label = h('label', { for: input.id }, meta.title, ' ', h('code', { class: 'key' }, meta.key));
    const source = h(
      'p',
      { class: 'source', id: sourceId },
      isSet ? [h('span', { class: 'badge set' }, `set for this ${level}`), ' ', reset] : `from the ${inherited}: ${show(effective[meta.key])}`,
    );
    const help = h('p', { class: 'help', id: helpId }, meta.description);
    return h('div', { class: `setting ${meta.type === 'boolean' ? 'setting-bool' : ''}` }, meta.type === 'boolean' ? h('div', { class: 'check' }, input, label) : [label, input], help, source);
  });

  const form = h(
    'form',
    { class: 'settings', 'aria-label': level === 'user' ? 'Settings of this user' : 'Default settings of the tenant' },
    h('div', { class: 'settings-grid' }, rows),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save settings')),
  );
  onSubmit(form, async () => {
    const patch: Patch = {};
    for (const meta of settingsMeta) {
      const input = inputs.get(meta.key);
      if (input && dirty.has(meta.key)) patch[meta.key] = readControl(meta, input);
    }
    if (Object.keys(patch).length === 0) throw new Error('Nothing changed: edit a setting first.');
    // An emptied number field goes as "" so that the API's validation explains what it expects.
    for (const [key, value] of Object.entries(patch)) if (typeof value === 'number' && Number.isNaN(value)) patch[key] = '';
    for (const input of inputs.values()) input.removeAttribute('aria-invalid');
    try {
      onSaved(await save(patch));
    } catch (error: unknown) {
      // Mark the fields the API refused (issue paths are "body.<key>[.index]").
      if (error instanceof ApiError) {
        for (const issue of error.errors) inputs.get(issue.path.split('.')[1] ?? '')?.setAttribute('aria-invalid', 'true');
      }
      throw error;
    }
  });
  return form;
}
