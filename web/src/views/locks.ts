// The tenant's users that are locked now, with why.
import { api, tenantPath, type Page } from '../api.js';
import type { ViewContext } from '../context.js';
import { formatTime, h } from '../dom.js';
import type { LockedUser } from '../types.js';
import { lockBadge, pageHeading, table } from '../ui.js';

export async function locksView(ctx: ViewContext): Promise<HTMLElement> {
  const locked = await api<Page<LockedUser>>('GET', tenantPath(ctx.tenantId, 'locks'), { query: { limit: 500 } });
  const rows = locked.items.map((lock) => [
    h('a', { href: `#/users/${encodeURIComponent(lock.userId)}` }, lock.identity),
    lockBadge(lock),
    formatTime(lock.lockedAt),
    lock.reasons.map((reason) => reason.name).join(', ') || '—',
  ]);
  return h('section', {}, pageHeading('Locked users'), h('p', {}, 'Open a user to see the lock history and unlock it.'), table('Locked users', ['Identity', 'State', 'Locked at', 'Reasons'], rows, 'No user is locked.'));
}
