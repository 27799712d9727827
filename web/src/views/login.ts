// Sign in with a tenant API key or the operator token. The token is checked with GET /v1/me
// before it is kept (in sessionStorage, for this tab only).
import { api, session, type Caller } from '../api.js';
import { field, h } from '../dom.js';
import { onSubmit, pageHeading } from '../ui.js';

export function loginView(onSignedIn: (caller: Caller) => void): HTMLElement {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true, spellcheck: 'false' });
  const form = h(
    'form',
    { class: 'card login', 'aria-label': 'Sign in' },
    field('API key or operator token', token, 'A tenant API key (opk_…) issued by the operator, or the operator token (OUTPOST_OPERATOR_TOKEN). It is kept only in this browser tab.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')),
  );
  onSubmit(form, async () => {
    const value = token.value.trim();
    const caller = await api<Caller>('GET', '/v1/me', { token: value });
    session.setToken(value);
    onSignedIn(caller);
  });
  return h('section', { class: 'narrow' }, pageHeading('Sign in to Outpost'), form);
}
