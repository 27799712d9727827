// Who changed what in the tenant's configuration: releases, locks and unlocks, settings, ceilings,
// domains, keys — by the operator or by which API key.
import { api, tenantPath, type Page } from '../api.js';
import type { ViewContext } from '../context.js';
import { formatTime, h } from '../dom.js';
import type { AuditEntry } from '../types.js';
import { pageHeading, table } from '../ui.js';

const detailText = (detail: Record<string, unknown>): string => (Object.keys(detail).length === 0 ? '—' : JSON.stringify(detail));

export async function auditView(ctx: ViewContext): Promise<HTMLElement> {
  const entries = await api<Page<AuditEntry>>('GET', tenantPath(ctx.tenantId, 'audit'), { query: { limit: 200 } });
  const rows = entries.items.map((entry) => [formatTime(entry.at), entry.actor, h('code', {}, entry.action), entry.target, detailText(entry.detail)]);
  return h('section', {}, pageHeading('Audit log'), h('p', {}, 'Changes made by the operator and with API keys, newest first.'), table('Audit log', ['When', 'Who', 'Action', 'What', 'Detail'], rows, 'Nothing recorded yet.'));
}
