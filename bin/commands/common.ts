// What every CLI command shares: its shape, argument helpers, and the stores it works on.
import { CLI_ACTOR, type AuditAction } from '../../core/audit.js';
import type { Config } from '../../core/config.js';
import type { Tenant } from '../../core/identity.js';
import { NotFoundError } from '../../core/stores.js';
import { openLocalStores, type LocalStores } from '../local-stores.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CommandContext {
  config: Config;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  out: (line: string) => void;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: false };

export interface Command {
  usage: string;
  summary: string;
  options?: Record<string, OptionSpec>;
  run(ctx: CommandContext): Promise<number | void>;
}

export const tenantOption = { tenant: { type: 'string' } } as const satisfies Record<string, OptionSpec>;
export const jsonOption = { json: { type: 'boolean' } } as const satisfies Record<string, OptionSpec>;

export function positional(ctx: CommandContext, index: number, name: string): string {
  const value = ctx.positionals[index];
  if (!value) throw new UsageError(`missing ${name}`);
  return value;
}

export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function requiredOption(ctx: CommandContext, name: string): string {
  const value = stringOption(ctx, name);
  if (!value) throw new UsageError(`--${name} is required`);
  return value;
}

/** Runs `fn` with the local stores open, and closes them after. */
export async function withStores<T>(ctx: CommandContext, fn: (stores: LocalStores) => Promise<T>): Promise<T> {
  const stores = openLocalStores(ctx.config);
  try {
    return await fn(stores);
  } finally {
    stores.close();
  }
}

/** Records an operator action taken with the CLI in the audit log. */
export async function auditCli(stores: LocalStores, tenantId: string | null, action: AuditAction, target: string, detail: Record<string, unknown> = {}): Promise<void> {
  await stores.audit.record({ tenantId, actor: CLI_ACTOR, action, target, detail });
}

export async function tenantNamed(stores: LocalStores, name: string): Promise<Tenant> {
  const tenant = await stores.configStore.getTenantByName(name);
  if (!tenant) throw new NotFoundError(`no tenant named "${name}" (see: npx outpost tenant list)`);
  return tenant;
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export function formatTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-';
}

/** Prints rows as aligned columns. */
export function table(out: (line: string) => void, header: string[], rows: string[][]): void {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  out(line(header));
  for (const row of rows) out(line(row));
}
