// Building blocks shared by the views: forms that show the API's problem detail, notices,
// copy buttons, headings that take the focus after navigation.
import { ApiError } from './api.js';
import { h } from './dom.js';

/** The message to show for any failure: the API's problem detail, or what the browser said. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    // Several validation issues: list them all (the detail names only the first).
    return error.errors.length > 1 ? error.errors.map((issue) => `${issue.path}: ${issue.message}`).join('; ') : error.detail;
  }
  return error instanceof Error ? error.message : String(error);
}

export function errorBox(error: unknown): HTMLParagraphElement {
  return h('p', { class: 'notice error', role: 'alert' }, describeError(error));
}

let lastNoticeAt = 0;

/** A page-level notice (successes, failures of buttons); it survives the navigation it causes. */
export function notify(message: string | Node, kind: 'ok' | 'error' | 'secret' = 'ok'): void {
  const region = document.getElementById('notices');
  if (!region) return;
  lastNoticeAt = Date.now();
  const close = h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss notice' }, '×');
  const notice = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('div', { class: 'notice-body' }, message), close);
  close.addEventListener('click', () => notice.remove());
  region.replaceChildren(notice);
  // Confirmations go away by themselves; errors and secrets stay until dismissed.
  if (kind === 'ok') setTimeout(() => notice.remove(), 6000);
}

/** Called on navigation: drops old notices, but not one that was just raised by the action that navigated. */
export function clearNotices(): void {
  if (Date.now() - lastNoticeAt < 1000) return;
  document.getElementById('notices')?.replaceChildren();
}

/**
 * Wires a form: on submit, runs `action` with the submit button disabled; an error is shown in
 * the form (role=alert) with the API's detail; success clears it.
 */
export function onSubmit(form: HTMLFormElement, action: () => Promise<void>): HTMLFormElement {
  const status = h('div', { class: 'form-status' });
  form.appendChild(status);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const buttons = Array.from(form.querySelectorAll<HTMLButtonElement>('button[type=submit]'));
    for (const button of buttons) button.disabled = true;
    status.replaceChildren();
    action()
      .catch((error: unknown) => status.replaceChildren(errorBox(error)))
      .finally(() => {
        for (const button of buttons) button.disabled = false;
      });
  });
  return form;
}

/** Runs a button's action, showing a failure next to it. */
export function onClick(button: HTMLButtonElement, action: () => Promise<void>): HTMLButtonElement {
  button.addEventListener('click', () => {
    button.disabled = true;
    action()
      .catch((error: unknown) => notify(describeError(error), 'error'))
      .finally(() => {
        button.disabled = false;
      });
  });
  return button;
}

/** A secret shown once (generated password, new API key), with a copy button. */
export function shownOnce(label: string, secret: string): HTMLDivElement {
  return h(
    'div',
    { class: 'notice secret', role: 'status' },
    secretContent(label, secret),
  );
}

/** The text and copy button of a secret, for a notice of kind 'secret'. */
export function secretContent(label: string, secret: string): HTMLDivElement {
  return h(
    'div',
    {},
    h('p', {}, h('strong', {}, label), ' — shown only now; copy it before leaving this page.'),
    h('p', {}, h('code', { class: 'secret-value' }, secret), ' ', copyButton(secret, label)),
  );
}

export function copyButton(text: string, what: string): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'small', 'aria-label': `Copy ${what}` }, 'Copy');
  button.addEventListener('click', () => {
    copyText(text).then(
      () => {
        button.textContent = 'Copied';
        setTimeout(() => (button.textContent = 'Copy'), 1500);
      },
      () => notify(`Copying was refused by the browser; select the ${what} and copy it by hand.`, 'error'),
    );
  });
  return button;
}

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // Plain-HTTP single nodes are not a secure context: fall back to a selected textarea.
  const area = h('textarea', { class: 'offscreen', 'aria-hidden': 'true', tabindex: '-1' });
  area.value = text;
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('copy refused');
}

/** The view's heading, focused after navigation so screen readers announce the new page. */
export function pageHeading(text: string): HTMLHeadingElement {
  return h('h1', { tabindex: '-1', class: 'page-heading' }, text);
}

export function lockBadge(lock: { locked: boolean; permanent: boolean; until: string | null } | null): HTMLSpanElement {
  if (!lock) return h('span', { class: 'badge' }, 'n/a');
  if (!lock.locked) return h('span', { class: 'badge ok' }, 'active');
  return h('span', { class: 'badge locked' }, lock.permanent ? 'locked (permanent)' : `locked until ${lock.until ? new Date(lock.until).toISOString().slice(11, 16) : '?'} UTC`);
}

/** A table that becomes a list of cards on narrow screens (each cell carries its column name). */
export function table(caption: string, headers: string[], rows: Array<Array<Node | string | number>>, empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'responsive' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((header) => h('th', { scope: 'col' }, header)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, row.map((cell, index) => h('td', { 'data-label': headers[index] ?? '' }, cell))))),
    ),
  );
}
