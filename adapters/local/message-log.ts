// The message log in SQLite: one row a message, and its events in order.
import { FINAL_STATUSES, InvalidInputError, type MessageEvent, type MessageLog, type MessageRecord, type MessageSearch, type MessageStatus } from '../../core/stores.js';
import type { Clock } from '../../core/ports.js';
import { systemClock } from '../../core/ports.js';
import { writesOf, type Db } from './sqlite.js';

/** statusAfterEvent in SQL, given the requested status twice: a 'queued' leaves a final status as it is. */
const STATUS_AFTER_EVENT = `CASE WHEN ? = 'queued' AND status IN (${[...FINAL_STATUSES].map((name) => `'${name}'`).join(', ')}) THEN status ELSE ? END`;

interface Row {
  id: string;
  tenant_id: string | null;
  user_id: string | null;
  identity: string | null;
  mail_from: string;
  rcpt_to: string;
  size: number;
  subject: string | null;
  status: MessageStatus;
  received_at: number;
  updated_at: number;
}

const toRecord = (row: Row): MessageRecord => ({
  id: row.id,
  tenantId: row.tenant_id,
  userId: row.user_id,
  identity: row.identity,
  mailFrom: row.mail_from,
  rcptTo: JSON.parse(row.rcpt_to) as string[],
  size: row.size,
  subject: row.subject,
  status: row.status,
  receivedAt: row.received_at,
  updatedAt: row.updated_at,
});

export class SqliteMessageLog implements MessageLog {
  /** An event's statements, inside a transaction of the caller's. */
  private readonly writeEvent;
  // Made once: better-sqlite3 builds a wrapper per `transaction()` call.
  private readonly eventTransaction;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock = systemClock,
  ) {
    this.writeEvent = (messageId: string, event: string, detail: string, status: MessageStatus | undefined, now: number): void => {
      db.prepare('INSERT INTO message_events (message_id, at, event, detail) VALUES (?, ?, ?, ?)').run(messageId, now, event, detail);
      db.prepare('INSERT INTO message_event_counts (event, count) VALUES (?, 1) ON CONFLICT (event) DO UPDATE SET count = count + 1').run(event);
      if (status) db.prepare(`UPDATE messages SET status = ${STATUS_AFTER_EVENT}, updated_at = ? WHERE id = ?`).run(status, status, now, messageId);
    };
    this.eventTransaction = db.transaction(this.writeEvent);
  }

  async create(record: Omit<MessageRecord, 'updatedAt'>): Promise<void> {
    this.createNow(record);
  }

  /** create(), synchronously: for callers that write it inside their own transaction (group commit). */
  createNow(record: Omit<MessageRecord, 'updatedAt'>): void {
    this.db
      .prepare(
        `INSERT INTO messages (id, tenant_id, user_id, identity, mail_from, rcpt_to, size, subject, status, received_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.tenantId,
        record.userId,
        record.identity,
        record.mailFrom,
        JSON.stringify(record.rcptTo),
        record.size,
        record.subject,
        record.status,
        record.receivedAt,
        record.receivedAt,
      );
  }

  /** Committed with the connection's other writes of this turn of the event loop (sqlite.ts TurnWrites): await it before reading it back. */
  addEvent(messageId: string, event: string, detail: Record<string, unknown> = {}, status?: MessageStatus): Promise<void> {
    const now = this.clock.now();
    // Serialised now: the caller may change `detail` before the turn is over.
    const json = JSON.stringify(detail);
    // TurnWrites runs it in a savepoint of its own.
    return writesOf(this.db).run(() => this.writeEvent(messageId, event, json, status, now));
  }

  /**
   * addEvent(), synchronously, inside the caller's transaction (see createNow): the group commit's,
   * which writes all of its batch or nothing, so the event's statements need no savepoint of their
   * own there (two statements more a message on the writer thread). Outside a transaction they
   * still commit together.
   */
  addEventNow(messageId: string, event: string, detail: Record<string, unknown> = {}, status?: MessageStatus, now = this.clock.now()): void {
    if (this.db.inTransaction) this.writeEvent(messageId, event, JSON.stringify(detail), status, now);
    else this.eventTransaction(messageId, event, JSON.stringify(detail), status, now);
  }

  async get(messageId: string): Promise<{ message: MessageRecord; events: MessageEvent[] } | undefined> {
    const row = this.db.prepare('SELECT * FROM messages WHERE id = ?').get(messageId) as Row | undefined;
    if (!row) return undefined;
    const events = (
      this.db.prepare('SELECT at, event, detail FROM message_events WHERE message_id = ? ORDER BY seq').all(messageId) as Array<{
        at: number;
        event: string;
        detail: string;
      }>
    ).map((item) => ({ at: item.at, event: item.event, detail: JSON.parse(item.detail) as Record<string, unknown> }));
    return { message: toRecord(row), events };
  }

  async eventCounts(): Promise<Record<string, number>> {
    const rows = this.db.prepare('SELECT event, count FROM message_event_counts ORDER BY event').all() as Array<{ event: string; count: number }>;
    return Object.fromEntries(rows.map((row) => [row.event, row.count]));
  }

  async recordProviderIds(messageId: string, providerIds: string[]): Promise<void> {
    const insert = this.db.prepare('INSERT INTO provider_message_ids (provider_id, message_id) VALUES (?, ?) ON CONFLICT (provider_id) DO UPDATE SET message_id = excluded.message_id');
    this.db.transaction(() => {
      for (const providerId of providerIds) insert.run(providerId, messageId);
    })();
  }

  async findByProviderId(providerId: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT message_id FROM provider_message_ids WHERE provider_id = ?').get(providerId) as { message_id: string } | undefined;
    return row?.message_id;
  }

  async purgeOlderThan(cutoff: number): Promise<number> {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM provider_message_ids WHERE message_id IN (SELECT id FROM messages WHERE received_at < ?)').run(cutoff);
      this.db.prepare('DELETE FROM message_events WHERE message_id IN (SELECT id FROM messages WHERE received_at < ?)').run(cutoff);
      return this.db.prepare('DELETE FROM messages WHERE received_at < ?').run(cutoff).changes;
    })();
  }

  async search(query: MessageSearch): Promise<{ items: MessageRecord[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    // Newest first; the cursor is "received_at:id" of the last item of the previous page.
    const [cursorAt, cursorId] = query.cursor ? decodeCursor(query.cursor) : [null, null];
    const rows = this.db
      .prepare(
        `SELECT * FROM messages
         WHERE (@tenantId IS NULL OR tenant_id = @tenantId)
           AND (@userId IS NULL OR user_id = @userId)
           AND (@sender IS NULL OR lower(mail_from) = lower(@sender))
           AND (@recipient IS NULL OR EXISTS (SELECT 1 FROM json_each(rcpt_to) WHERE lower(json_each.value) = lower(@recipient)))
           AND (@status IS NULL OR status = @status)
           AND (@from IS NULL OR received_at >= @from)
           AND (@to IS NULL OR received_at < @to)
           AND (@cursorAt IS NULL OR received_at < @cursorAt OR (received_at = @cursorAt AND id < @cursorId))
         ORDER BY received_at DESC, id DESC
         LIMIT @limit`,
      )
      .all({
        tenantId: query.tenantId ?? null,
        userId: query.userId ?? null,
        sender: query.sender ?? null,
        recipient: query.recipient ?? null,
        status: query.status ?? null,
        from: query.from ?? null,
        to: query.to ?? null,
        cursorAt,
        cursorId,
        limit: limit + 1,
      }) as Row[];
    const page = rows.slice(0, limit).map(toRecord);
    const last = page[page.length - 1];
    const nextCursor = rows.length > limit && last ? Buffer.from(`${last.receivedAt}:${last.id}`).toString('base64url') : null;
    return { items: page, nextCursor };
  }
}

function decodeCursor(cursor: string): [number, string] {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const colon = text.indexOf(':');
  const at = Number(text.slice(0, colon));
  if (colon <= 0 || !Number.isFinite(at) || colon === text.length - 1) {
    throw new InvalidInputError('cursor is not one this search returned; start again without it');
  }
  return [at, text.slice(colon + 1)];
}
