// One outgoing user: state, volume chart, settings, lock/unlock with reasons and history,
// password rotation, delete.
import { api, tenantPath, type Page } from '../api.js';
import { volumeChart } from '../chart.js';
import { go, type ViewContext } from '../context.js';
import { field, formatTime, h } from '../dom.js';
import type { Lock, LockEvent, Stats, UserDetail } from '../types.js';
import { errorBox, lockBadge, notify, onClick, onSubmit, pageHeading, shownOnce } from '../ui.js';
import { settingsForm } from './settings-form.js';
import { legend } from './users.js';

export async function userView(ctx: ViewContext, userId: string): Promise<HTMLElement> {
  const base = tenantPath(ctx.tenantId, 'users', userId);
  const user = await api<UserDetail>('GET', base);
  const history = user.lock ? await api<Page<LockEvent>>('GET', `${base}/lock-history`, { query: { limit: 20 } }) : undefined;

  const settingsBox = h('div', {});
  const renderSettings = (view: Pick<UserDetail, 'overrides' | 'effective'>): void => {
    settingsBox.replaceChildren(
      settingsForm(
        view,
        'user',
        async (patch) => api<UserDetail>('PATCH', `${base}/settings`, { body: patch }),
        (next) => {
          renderSettings(next);
          notify(`Settings of ${user.identity} saved.`);
        },
      ),
    );
  };
  renderSettings(user);

  return h(
    'section',
    {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/users' }, '← All users')),
    pageHeading(user.identity),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Kind'),
      h('dd', {}, user.kind),
      h('dt', {}, 'State'),
      h('dd', {}, lockBadge(user.lock)),
      h('dt', {}, 'Mails today'),
      h('dd', {}, `${user.today.messages} (${user.today.recipients} recipients)`),
      h('dt', {}, 'Created'),
      h('dd', {}, formatTime(user.createdAt)),
      h('dt', {}, 'Id'),
      h('dd', {}, h('code', {}, user.id)),
    ),
    h('p', {}, h('a', { href: `#/messages?${new URLSearchParams({ userId: user.id }).toString()}` }, `Messages of ${user.identity} in the log`)),
    h('section', { 'aria-labelledby': 'volume-h' }, h('h2', { id: 'volume-h' }, 'Volume'), await volumeBox(base, user.identity)),
    user.lock ? lockSection(ctx, base, user.identity, user.lock, history?.items ?? []) : h('p', { class: 'notice' }, 'Locks are not available in this deployment.'),
    h('section', { 'aria-labelledby': 'settings-h' }, h('h2', { id: 'settings-h' }, 'Settings'), settingsBox),
    user.kind === 'ip' ? null : passwordSection(base, user.identity),
    deleteSection(base, user.identity),
  );
}

async function volumeBox(base: string, identity: string): Promise<HTMLElement> {
  const box = h('figure', { class: 'chart-box' });
  const periods = { hour: 'Last 24 hours', day: 'Last 30 days' } as const;
  const buttons = (Object.keys(periods) as Array<keyof typeof periods>).map((bucket) => {
    const button = h('button', { type: 'button', class: 'small secondary', 'aria-pressed': 'false' }, periods[bucket]);
    button.addEventListener('click', () => void show(bucket));
    return { bucket, button };
  });
  const chart = h('div', {});
  const show = async (bucket: 'hour' | 'day'): Promise<void> => {
    for (const item of buttons) item.button.setAttribute('aria-pressed', String(item.bucket === bucket));
    try {
      const stats = await api<Stats>('GET', `${base}/stats`, { query: { bucket } });
      const refused = Object.entries(stats.totals.refused).map(([reason, count]) => `${reason}: ${count}`).join(', ');
      chart.replaceChildren(
        volumeChart(stats, `Mails of ${identity} per ${bucket}`),
        h('figcaption', { class: 'muted' }, legend(), h('br'), `Total: ${stats.totals.messages} mails to ${stats.totals.recipients} recipients, ${stats.totals.sent} delivered${refused ? `; not delivered: ${refused}` : ''}.`),
      );
    } catch (error: unknown) {
      chart.replaceChildren(errorBox(error));
    }
  };
  await show('hour');
  box.append(h('div', { class: 'toggle', role: 'group', 'aria-label': 'Period' }, buttons.map((item) => item.button)), chart);
  return box;
}

function reasonsList(reasons: Lock['reasons']): HTMLElement {
  if (reasons.length === 0) return h('span', { class: 'muted' }, 'no reason recorded');
  return h(
    'ul',
    { class: 'reasons' },
    reasons.map((symbol) =>
      h('li', {}, h('code', {}, symbol.name), symbol.evidence === undefined ? null : ` — ${typeof symbol.evidence === 'string' ? symbol.evidence : Object.entries(symbol.evidence).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')}`),
    ),
  );
}

function lockSection(ctx: ViewContext, base: string, identity: string, lock: Lock, history: LockEvent[]): HTMLElement {
  const reason = h('input', { name: 'reason', required: true, maxlength: 500, autocomplete: 'off' });
  let form: HTMLFormElement;
  if (lock.locked) {
    form = h(
      'form',
      { class: 'card', 'aria-label': 'Unlock this user' },
      h('p', {}, lock.permanent ? 'Locked permanently: only an unlock lifts it.' : `Locked until ${formatTime(lock.until)}.`, ' Locked at ', formatTime(lock.lockedAt), '.'),
      h('p', {}, 'Why: '),
      reasonsList(lock.reasons),
      field('Reason for unlocking', reason, 'Recorded in the lock history. Unlocking also resets the timeout-unlock count and the counters that caused the lock.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Unlock')),
    );
    onSubmit(form, async () => {
      await api<Lock>('POST', `${base}/unlock`, { body: { reason: reason.value } });
      notify(`${identity} unlocked.`);
      ctx.refresh();
    });
  } else {
    const minutes = h('input', { name: 'minutes', type: 'number', min: 1, max: 525600, step: 1, inputmode: 'numeric' });
    form = h(
      'form',
      { class: 'card', 'aria-label': 'Lock this user' },
      h('p', {}, `Not locked. Automatic unlocks used: ${lock.timedUnlocks}.`),
      field('Reason for locking', reason, 'Recorded in the lock history and shown to whoever unlocks.'),
      field('Minutes (optional)', minutes, 'Leave empty to lock until someone unlocks by hand.'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger' }, 'Lock')),
    );
    onSubmit(form, async () => {
      const body: Record<string, unknown> = { reason: reason.value };
      if (minutes.value.trim() !== '') body['minutes'] = Number(minutes.value);
      await api<Lock>('POST', `${base}/lock`, { body });
      notify(`${identity} locked.`);
      ctx.refresh();
    });
  }
  const events = history.map((event) =>
    h(
      'li',
      {},
      h('strong', {}, event.kind === 'lock' ? (event.permanent ? 'Locked (permanent)' : 'Locked') : event.kind === 'timed-unlock' ? 'Unlocked by timeout' : 'Unlocked'),
      ` ${formatTime(event.at)}`,
      event.by ? ` by ${event.by}` : '',
      event.reason ? ` — “${event.reason}”` : '',
      event.reasons ? reasonsList(event.reasons) : null,
    ),
  );
  return h(
    'section',
    { 'aria-labelledby': 'lock-h' },
    h('h2', { id: 'lock-h' }, 'Lock'),
    form,
    h('h3', {}, 'Lock history'),
    events.length ? h('ol', { class: 'history' }, events) : h('p', { class: 'muted' }, 'Never locked.'),
  );
}

function passwordSection(base: string, identity: string): HTMLElement {
  const shown = h('div', {});
  const password = h('input', { name: 'newPassword', type: 'password', autocomplete: 'new-password', minlength: 8 });
  const form = h(
    'form',
    { class: 'card', 'aria-label': 'Rotate the SMTP password' },
    field('New password (optional)', password, 'Leave empty to generate a strong password, shown once. The old password stops working at once.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Rotate password')),
  );
  onSubmit(form, async () => {
    const body = password.value === '' ? {} : { password: password.value };
    const result = await api<{ generatedPassword: string } | undefined>('POST', `${base}/password`, { body });
    password.value = '';
    shown.replaceChildren(result ? shownOnce(`New password of ${identity}`, result.generatedPassword) : h('p', { class: 'notice ok', role: 'status' }, 'Password changed.'));
  });
  return h('section', { 'aria-labelledby': 'pw-h' }, h('h2', { id: 'pw-h' }, 'SMTP password'), shown, form);
}

function deleteSection(base: string, identity: string): HTMLElement {
  const button = onClick(h('button', { type: 'button', class: 'danger' }, `Delete ${identity}`), async () => {
    if (!confirm(`Delete ${identity}? It can no longer send.`)) return;
    await api('DELETE', base);
    notify(`${identity} deleted.`);
    go('#/users');
  });
  return h('section', { 'aria-labelledby': 'del-h' }, h('h2', { id: 'del-h' }, 'Delete'), button);
}
