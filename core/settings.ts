// The per-user settings of the seed ("Manage users"), under the keys DESIGN.md tables.
// Effective value = user override ?? tenant default ?? deployment default (config `defaults`) ?? built-in.
// The same keys are used by the config file, the CLI, the API and the control panel.
import { z } from 'zod';

const domainName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'expected a domain name');

export const userSettingsSchema = z
  .object({
    autoLock: z.boolean().default(true).describe('Lock the identity automatically when abuse is detected (spam or virus verdicts, invalid-recipient limit, repeated limit violations, brute force).'),
    blockSpam: z.boolean().default(true).describe('Spam verdicts are quarantined instead of delivered.'),
    mailsPerMinute: z.number().int().min(0).default(60).describe('Mails per minute (a message to N recipients counts N); 0 means no limit. Over it: 450 4.7.1.'),
    mailsPerHour: z.number().int().min(0).default(500).describe('Out Going Limit: mails per hour (a message to N recipients counts N); 0 means no limit. Over it: 451 4.7.1.'),
    lockMinutes: z.number().int().min(1).default(60).describe('User Lock Time: how long an automatic lock lasts, in minutes.'),
    maxTimedUnlocks: z.number().int().min(0).default(3).describe('Automatic unlocks at timeout allowed; the next automatic lock after that is permanent until unlocked by an operator or tenant.'),
    requiredFromDomains: z.array(domainName).default([]).describe('Require FROM domain: the envelope sender and the header From must be in one of these domains; empty means no restriction.'),
    requireValidSender: z.boolean().default(true).describe('Valid Sender Address Required: the envelope sender must be a syntactically valid address (not empty for authenticated users) whose domain resolves.'),
    dkimSelector: z.string().regex(/^[A-Za-z0-9._-]{1,63}$/).nullable().default(null).describe("DKIM selector of the sender domain's key that signs this user's mail; null means the domain's default key."),
    maxRecipientsPerDay: z.number().int().min(0).default(1000).describe('Maximum distinct recipient addresses per rolling 24 hours; 0 means no limit. Over it: 450 4.7.1.'),
    invalidRecipientLimit: z.number().int().min(0).default(50).describe('Invalid recipients (bad syntax, domain without MX/A, hard bounces) per rolling 24 hours before the identity is restricted (locked when autoLock is on, else refused at RCPT); 0 means no limit.'),
    maxMessageBytes: z.number().int().positive().default(26_214_400).describe('Maximum message size in bytes for this user (never above smtp.maxMessageBytes). Over it: 552 5.3.4.'),
    spamThreshold: z.number().min(0).default(6).describe('Spam score (engine score plus fingerprint and bulk scores) at or above which a message is a spam verdict: quarantined when blockSpam is on, else delivered and counted as abuse.'),
    sendAsAnyAddress: z.boolean().default(false).describe('Off: a mailbox user may send (envelope sender and header From) only as its own address, a domain user only as addresses of its domain; on: as any address (still within requiredFromDomains). Over it: 550 5.7.1.'),
    forwardBounces: z.boolean().default(true).describe('Tenant level: valid bounces received for this tenant\'s mail are forwarded to the original sender (BATV tag stripped), after being recorded.'),
    bounceValidation: z.boolean().default(true).describe("Tenant level: BATV-tag envelope senders on direct SMTP delivery and refuse bounces to untagged addresses of the tenant's domains (550 5.7.1). On by default: bounces of mail sent untagged (before it was turned on) are refused too."),
  })
  .strict();

export type UserSettings = z.infer<typeof userSettingsSchema>;
export type SettingKey = keyof UserSettings;
export const settingKeys = Object.keys(userSettingsSchema.shape) as SettingKey[];

/** Overrides as stored for a tenant or a user: any subset, validated. */
// Built from the unwrapped fields: zod 4's `.partial()` keeps `.default()`, which would fill every
// missing key of an override with the built-in value and hide the tenant and deployment layers.
type SettingsShape = typeof userSettingsSchema.shape;
const overrideShape = Object.fromEntries(
  Object.entries(userSettingsSchema.shape).map(([key, field]) => [key, field.unwrap().optional()]),
) as { [K in keyof SettingsShape]: z.ZodOptional<ReturnType<SettingsShape[K]['unwrap']>> };
export const settingOverridesSchema = z.object(overrideShape).strict();
export type SettingOverrides = z.infer<typeof settingOverridesSchema>;

export const builtInSettings: UserSettings = userSettingsSchema.parse({});

/** The effective settings of a user: the first layer that sets a key wins. */
/**
 * Effective settings already validated, by their layers: every MAIL FROM asks for its sender's, and
 * validating the merge (zod) cost more than the rest of the lookup. Keyed by the layers' JSON, so
 * a changed setting is a new key; bounded, emptied when full.
 */
const validated = new Map<string, UserSettings>();
const VALIDATED_MAX = 2000;

export function effectiveSettings(...layers: Array<SettingOverrides | undefined>): UserSettings {
  const key = JSON.stringify(layers);
  const known = validated.get(key);
  if (known) return { ...known };
  const settings = mergeSettings(layers);
  if (validated.size >= VALIDATED_MAX) validated.clear();
  validated.set(key, settings);
  return { ...settings };
}

function mergeSettings(layers: Array<SettingOverrides | undefined>): UserSettings {
  const merged: Record<string, unknown> = { ...builtInSettings };
  // layers are given most specific first; apply from least specific
  for (const layer of [...layers].reverse()) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) merged[key] = value;
    }
  }
  return userSettingsSchema.parse(merged);
}

/**
 * Parses `KEY=VALUE` pairs from the CLI into validated overrides: numbers, booleans
 * (true/false/on/off), comma-separated lists, and `null`/empty to clear a nullable value.
 */
export function parseSettingAssignments(pairs: string[]): SettingOverrides {
  const raw: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`expected KEY=VALUE, got "${pair}"`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const field = userSettingsSchema.shape[key as SettingKey];
    if (!field) throw new Error(`unknown setting "${key}"; known: ${settingKeys.join(', ')}`);
    const fallback = builtInSettings[key as SettingKey];
    if (typeof fallback === 'boolean') {
      if (!/^(true|false|on|off|yes|no|1|0)$/i.test(value)) throw new Error(`${key} takes true or false`);
      raw[key] = /^(true|on|yes|1)$/i.test(value);
    } else if (typeof fallback === 'number') {
      if (!/^\d+$/.test(value)) throw new Error(`${key} takes a whole number`);
      raw[key] = Number(value);
    } else if (Array.isArray(fallback)) {
      raw[key] = value.split(',').map((item) => item.trim()).filter(Boolean);
    } else {
      raw[key] = value === '' || value === 'null' ? null : value;
    }
  }
  const result = settingOverridesSchema.safeParse(raw);
  if (!result.success) {
    throw new Error(result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  }
  return result.data;
}
