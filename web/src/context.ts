// What every view gets: who is signed in, which tenant is shown, and how to move elsewhere.
import type { Caller } from './api.js';

export interface ViewContext {
  caller: Caller;
  /** The tenant being managed: the key's own tenant, or the one the operator picked. */
  tenantId: string;
  /** Re-renders the current route (after a change). */
  refresh(): void;
}

export const go = (hash: string): void => {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
};
