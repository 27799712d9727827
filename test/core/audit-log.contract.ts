// The contract every AuditLog backend keeps (SQLite, DynamoDB): entries numbered in the order
// they were recorded, read newest first, for one tenant or all, paged with `beforeId`, with the
// time of the record and the detail as given. Call `auditLogContract(name, open)` from a
// backend's test file.
import { describe, expect, it } from 'vitest';
import type { AuditLog } from '../../core/audit.js';

export function auditLogContract(backend: string, open: (clock: { now(): number }) => Promise<AuditLog>): void {
  describe(`AuditLog contract: ${backend}`, () => {
    it('reads entries newest first with who, what, when and the detail', async () => {
      let now = 1000;
      const log = await open({ now: () => now });
      await log.record({ tenantId: 't1', actor: 'operator (cli)', action: 'tenant.created', target: 'tenant', detail: {} });
      now = 2000;
      await log.record({ tenantId: 't1', actor: 'tenant-key:k1', action: 'settings.changed', target: 'alice@acme.test', detail: { mailsPerHour: { from: 100, to: 50 }, keys: ['a', 'b'] } });
      now = 3000;
      await log.record({ tenantId: null, actor: 'operator', action: 'ceilings.changed', target: 'deployment', detail: { note: 'ünïcode' } });
      const all = await log.list({ limit: 10 });
      expect(all.map((entry) => entry.action)).toEqual(['ceilings.changed', 'settings.changed', 'tenant.created']);
      expect(all[0]).toEqual({ id: all[0]?.id, at: 3000, tenantId: null, actor: 'operator', action: 'ceilings.changed', target: 'deployment', detail: { note: 'ünïcode' } });
      expect(all[1]).toMatchObject({ at: 2000, tenantId: 't1', actor: 'tenant-key:k1', target: 'alice@acme.test', detail: { mailsPerHour: { from: 100, to: 50 }, keys: ['a', 'b'] } });
      const ids = all.map((entry) => entry.id);
      expect([...ids].sort((a, b) => b - a)).toEqual(ids);
      expect(new Set(ids).size).toBe(3);
    });

    it('shows a tenant its own entries only, and pages on with beforeId', async () => {
      const log = await open({ now: () => 5000 });
      for (let n = 1; n <= 7; n++) {
        await log.record({ tenantId: n % 2 === 0 ? 't2' : 't1', actor: 'operator', action: 'domain.added', target: `d${n}.test`, detail: {} });
      }
      await log.record({ tenantId: null, actor: 'operator', action: 'tenant.deleted', target: 'tenant', detail: {} });
      expect((await log.list({ tenantId: 't1', limit: 10 })).map((entry) => entry.target)).toEqual(['d7.test', 'd5.test', 'd3.test', 'd1.test']);
      expect((await log.list({ tenantId: 't2', limit: 10 })).map((entry) => entry.target)).toEqual(['d6.test', 'd4.test', 'd2.test']);
      expect(await log.list({ tenantId: 'nobody', limit: 10 })).toEqual([]);
      const first = await log.list({ tenantId: 't1', limit: 2 });
      expect(first.map((entry) => entry.target)).toEqual(['d7.test', 'd5.test']);
      const next = await log.list({ tenantId: 't1', beforeId: first[1]?.id ?? 0, limit: 2 });
      expect(next.map((entry) => entry.target)).toEqual(['d3.test', 'd1.test']);
      // The operator pages through everything the same way.
      const page = await log.list({ limit: 3 });
      expect(page.map((entry) => entry.target)).toEqual(['tenant', 'd7.test', 'd6.test']);
      const rest = await log.list({ beforeId: page[2]?.id ?? 0, limit: 100 });
      expect(rest.map((entry) => entry.target)).toEqual(['d5.test', 'd4.test', 'd3.test', 'd2.test', 'd1.test']);
      expect(await log.list({ beforeId: rest[4]?.id ?? 0, limit: 100 })).toEqual([]);
    });

    it('gives entries recorded at once ids of their own', async () => {
      const log = await open({ now: () => 7000 });
      await Promise.all(Array.from({ length: 12 }, (_, n) => log.record({ tenantId: 't1', actor: 'operator', action: 'user.created', target: `u${n}`, detail: {} })));
      const entries = await log.list({ tenantId: 't1', limit: 100 });
      expect(entries).toHaveLength(12);
      expect(new Set(entries.map((entry) => entry.id)).size).toBe(12);
      expect(new Set(entries.map((entry) => entry.target)).size).toBe(12);
    });
  });
}
