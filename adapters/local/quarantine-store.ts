// QuarantineStore on SQLite: one row a held message; the message itself stays in the blob store.
import { z } from 'zod';
import type { QuarantineEntry, QuarantineStore } from '../../core/scan/quarantine.js';
import type { Db } from './sqlite.js';
import { envelopeSchema } from '../../core/envelope.js';

interface Row {
  message_id: string;
  tenant_id: string;
  user_id: string;
  kind: string;
  subject: string | null;
  blob_key: string;
  quarantined_at: number;
  envelope: string;
  symbols: string;
}

const kindSchema = z.enum(['clean', 'spam', 'virus', 'blocked', 'malformed', 'deferred']);
const symbolsSchema = z.array(
  z.object({ name: z.string(), score: z.number().optional(), evidence: z.union([z.string(), z.record(z.string(), z.unknown())]).optional() }),
);

function toEntry(row: Row): QuarantineEntry {
  const symbols = symbolsSchema.parse(JSON.parse(row.symbols)).map((item) => {
    const symbol: QuarantineEntry['symbols'][number] = { name: item.name };
    if (item.score !== undefined) symbol.score = item.score;
    if (item.evidence !== undefined) symbol.evidence = item.evidence;
    return symbol;
  });
  return {
    messageId: row.message_id,
    tenantId: row.tenant_id,
    userId: row.user_id,
    envelope: envelopeSchema.parse(JSON.parse(row.envelope)),
    kind: kindSchema.parse(row.kind),
    symbols,
    subject: row.subject,
    blobKey: row.blob_key,
    quarantinedAt: row.quarantined_at,
  };
}

export class SqliteQuarantineStore implements QuarantineStore {
  constructor(private readonly db: Db) {}

  async add(entry: QuarantineEntry): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO quarantine (message_id, tenant_id, user_id, kind, subject, blob_key, quarantined_at, envelope, symbols)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING`,
      )
      .run(
        entry.messageId,
        entry.tenantId,
        entry.userId,
        entry.kind,
        entry.subject,
        entry.blobKey,
        entry.quarantinedAt,
        JSON.stringify(entry.envelope),
        JSON.stringify(entry.symbols),
      );
  }

  async get(messageId: string): Promise<QuarantineEntry | undefined> {
    const row = this.db.prepare('SELECT * FROM quarantine WHERE message_id = ?').get(messageId) as Row | undefined;
    return row && toEntry(row);
  }

  async list(filter: { tenantId?: string; limit?: number; before?: number }): Promise<QuarantineEntry[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM quarantine WHERE (@tenantId IS NULL OR tenant_id = @tenantId) AND (@before IS NULL OR quarantined_at < @before)
         ORDER BY quarantined_at DESC, message_id DESC LIMIT @limit`,
      )
      .all({ tenantId: filter.tenantId ?? null, before: filter.before ?? null, limit: Math.min(Math.max(filter.limit ?? 100, 1), 1000) }) as Row[];
    return rows.map(toEntry);
  }

  async remove(messageId: string): Promise<void> {
    this.db.prepare('DELETE FROM quarantine WHERE message_id = ?').run(messageId);
  }

  async olderThan(cutoff: number, limit: number): Promise<QuarantineEntry[]> {
    const rows = this.db
      .prepare('SELECT * FROM quarantine WHERE quarantined_at < ? ORDER BY quarantined_at LIMIT ?')
      .all(cutoff, limit) as Row[];
    return rows.map(toEntry);
  }
}
