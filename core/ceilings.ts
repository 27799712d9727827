// Per-tenant ceilings set by the operator: how far a tenant may loosen its users' settings.
// A numeric ceiling caps a limit (where 0 means "no limit", 0 counts as above every ceiling); a
// boolean ceiling forces the value (`blockSpam: true` — the tenant cannot turn it off).
// Requests with a tenant key beyond a ceiling are refused; stored values set before the ceiling
// are clamped when the effective settings are computed, so a ceiling holds at once.
import { z } from 'zod';
import type { SettingOverrides, UserSettings } from './settings.js';

/** Numeric settings where a larger value is more permissive; `noLimitAtZero`: 0 means unlimited. */
const NUMERIC = {
  mailsPerMinute: { noLimitAtZero: true },
  mailsPerHour: { noLimitAtZero: true },
  maxRecipientsPerDay: { noLimitAtZero: true },
  invalidRecipientLimit: { noLimitAtZero: true },
  maxMessageBytes: { noLimitAtZero: false },
  maxTimedUnlocks: { noLimitAtZero: false },
  spamThreshold: { noLimitAtZero: false },
} as const;
type NumericKey = keyof typeof NUMERIC;

const BOOLEAN = ['autoLock', 'blockSpam', 'requireValidSender', 'sendAsAnyAddress', 'forwardBounces', 'bounceValidation'] as const;
type BooleanKey = (typeof BOOLEAN)[number];

export const ceilingsSchema = z
  .object({
    mailsPerMinute: z.number().int().min(1).optional().describe('Highest mailsPerMinute (0, no limit, is above it).'),
    mailsPerHour: z.number().int().min(1).optional().describe('Highest mailsPerHour (0, no limit, is above it).'),
    maxRecipientsPerDay: z.number().int().min(1).optional().describe('Highest maxRecipientsPerDay (0, no limit, is above it).'),
    invalidRecipientLimit: z.number().int().min(1).optional().describe('Highest invalidRecipientLimit (0, no limit, is above it).'),
    maxMessageBytes: z.number().int().min(1).optional().describe('Highest maxMessageBytes.'),
    maxTimedUnlocks: z.number().int().min(0).optional().describe('Highest maxTimedUnlocks.'),
    spamThreshold: z.number().min(0).optional().describe('Highest spamThreshold (a higher threshold lets more spam through).'),
    autoLock: z.boolean().optional().describe('Forced value of autoLock.'),
    blockSpam: z.boolean().optional().describe('Forced value of blockSpam.'),
    requireValidSender: z.boolean().optional().describe('Forced value of requireValidSender.'),
    sendAsAnyAddress: z.boolean().optional().describe('Forced value of sendAsAnyAddress.'),
    forwardBounces: z.boolean().optional().describe('Forced value of forwardBounces.'),
    bounceValidation: z.boolean().optional().describe('Forced value of bounceValidation.'),
  })
  .strict();
export type Ceilings = z.infer<typeof ceilingsSchema>;
export const ceilingKeys = Object.keys(ceilingsSchema.shape) as Array<keyof Ceilings>;

function parseCeilingValue(key: string, value: string): number | boolean {
  if ((BOOLEAN as readonly string[]).includes(key)) {
    if (!/^(true|false|on|off|yes|no)$/i.test(value)) throw new Error(`ceiling ${key} forces true or false`);
    return /^(true|on|yes)$/i.test(value);
  }
  if (!/^\d+(\.\d+)?$/.test(value)) throw new Error(`ceiling ${key} takes a number`);
  return Number(value);
}

/** Applies `KEY=VALUE` (set) and `KEY=` (remove) assignments from the CLI to stored ceilings. */
export function applyCeilingAssignments(current: Ceilings, pairs: string[]): Ceilings {
  const next: Record<string, unknown> = { ...current };
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`expected KEY=VALUE, got "${pair}"`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!(ceilingKeys as string[]).includes(key)) throw new Error(`no ceiling "${key}"; known: ${ceilingKeys.join(', ')}`);
    if (value === '') delete next[key];
    else next[key] = parseCeilingValue(key, value);
  }
  const parsed = ceilingsSchema.safeParse(next);
  if (!parsed.success) throw new Error(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  return parsed.data;
}

/** A setting value beyond its ceiling, named for the refusal. */
export interface CeilingBreach {
  key: string;
  value: unknown;
  ceiling: number | boolean;
}

function beyond(key: NumericKey, value: number, ceiling: number): boolean {
  if (NUMERIC[key].noLimitAtZero && value === 0) return true;
  return value > ceiling;
}

/** The first override in `overrides` that a ceiling forbids, if any. */
export function ceilingBreach(overrides: SettingOverrides, ceilings: Ceilings): CeilingBreach | undefined {
  for (const [key, value] of Object.entries(overrides)) {
    const ceiling = ceilings[key as keyof Ceilings];
    if (ceiling === undefined || value === undefined || value === null) continue;
    if (typeof ceiling === 'boolean') {
      if (value !== ceiling) return { key, value, ceiling };
    } else if (typeof value === 'number' && beyond(key as NumericKey, value, ceiling)) {
      return { key, value, ceiling };
    }
  }
  return undefined;
}

/** Effective settings held within the ceilings: limits lowered to them, forced booleans set. */
export function clampToCeilings(settings: UserSettings, ceilings: Ceilings | undefined): UserSettings {
  if (!ceilings) return settings;
  const clamped: UserSettings = { ...settings };
  for (const key of Object.keys(NUMERIC) as NumericKey[]) {
    const ceiling = ceilings[key];
    if (ceiling !== undefined && beyond(key, clamped[key], ceiling)) clamped[key] = ceiling;
  }
  for (const key of BOOLEAN as readonly BooleanKey[]) {
    const forced = ceilings[key];
    if (forced !== undefined) clamped[key] = forced;
  }
  return clamped;
}

export function describeBreach(breach: CeilingBreach): string {
  return typeof breach.ceiling === 'boolean'
    ? `${breach.key} is forced to ${String(breach.ceiling)} for this tenant by the operator (ceiling ${breach.key}=${String(breach.ceiling)}); ${breach.key}=${String(breach.value)} is refused`
    : `${breach.key}=${String(breach.value)} is above the operator's ceiling ${breach.key}=${breach.ceiling} for this tenant${breach.value === 0 ? ' (0 means no limit)' : ''}`;
}
