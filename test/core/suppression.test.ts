import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../adapters/local/sqlite.js';
import { SqliteSuppressionList } from '../../adapters/local/suppression-store.js';
import { runChecks } from '../../core/checks/check.js';
import type { RcptToFacts } from '../../core/checks/session.js';
import { builtInSettings } from '../../core/settings.js';
import { suppressHardBounce, suppressionCheck } from '../../core/suppression.js';

const T0 = Date.UTC(2026, 10, 25, 12);

const facts = (rcptTo: string, tenantId = 't1'): RcptToFacts => ({
  sessionId: 's',
  clientIp: '192.0.2.1',
  listener: 'submission',
  now: T0 + 60_000,
  helo: 'client.example',
  secure: true,
  sender: {
    user: { id: 'u1', tenantId, kind: 'mailbox', identity: 'ann@example.com', domain: 'example.com', passwordHash: null, settings: {}, createdAt: 0 },
    tenant: { id: tenantId, name: 'acme', settings: {}, ceilings: {}, suspended: false, createdAt: 0 },
    settings: builtInSettings,
    via: 'auth',
  },
  mailFrom: 'ann@example.com',
  declaredSize: undefined,
  rcptTo,
  acceptedRcpts: [],
});

describe('suppressionCheck', () => {
  it('refuses a suppressed recipient with 550 5.1.1, saying since when and how to remove it', async () => {
    const list = new SqliteSuppressionList(openDatabase(':memory:'), { now: () => T0 });
    await suppressHardBounce(list, { tenantId: 't1', address: 'gone@example.net', reason: '550 5.1.1 user unknown', now: T0 });
    const outcome = await runChecks([suppressionCheck(list)], facts('gone@EXAMPLE.net'));
    expect(outcome.final).toMatchObject({ action: 'reject', code: 550, enhancedCode: '5.1.1' });
    expect(outcome.final.text).toContain('Recipient <gone@EXAMPLE.net> is on the suppression list of this account since 2026-11-25 12:00 UTC');
    expect(outcome.final.text).toContain('hard bounce: 550 5.1.1 user unknown');
    expect(outcome.final.text).toContain('outpost suppression remove --tenant acme gone@example.net');
    expect(outcome.symbols.map((symbol) => symbol.name)).toEqual(['SUPPRESSED_RECIPIENT']);
  });

  it('lets other recipients and other tenants pass', async () => {
    const list = new SqliteSuppressionList(openDatabase(':memory:'), { now: () => T0 });
    await list.add({ tenantId: 't1', address: 'gone@example.net', source: 'manual', reason: '' });
    expect((await runChecks([suppressionCheck(list)], facts('here@example.net'))).final.action).toBe('accept');
    expect((await runChecks([suppressionCheck(list)], facts('gone@example.net', 't2'))).final.action).toBe('accept');
  });
});
