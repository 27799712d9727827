// The settings of an outgoing user, with their explanations, taken at build time from
// core/settings.ts (the one definition the config, CLI and API use), so the form always offers
// every key with the text the schema documents.
import { builtInSettings, settingKeys, userSettingsSchema, type SettingKey } from '../../core/settings.js';

export type SettingType = 'boolean' | 'count' | 'number' | 'domains' | 'selector';

export interface SettingMeta {
  key: SettingKey;
  /** The seed's name of the setting (DESIGN.md table), for people who know the old panel. */
  title: string;
  description: string;
  type: SettingType;
  builtIn: unknown;
  min?: number;
}

// Keys added to the schema later still get a field: their title is made from the key.
const TITLES: Partial<Record<SettingKey, string>> = {
  autoLock: 'Automatic lock',
  blockSpam: 'Block outgoing spam',
  mailsPerMinute: 'Mails per minute',
  mailsPerHour: 'Outgoing limit (mails per hour)',
  lockMinutes: 'User lock time (minutes)',
  maxTimedUnlocks: 'Max unlocks by timeout',
  requiredFromDomains: 'Require FROM domain',
  requireValidSender: 'Valid sender address required',
  dkimSelector: 'DKIM selector',
  maxRecipientsPerDay: 'Maximum recipients per day',
  invalidRecipientLimit: 'Invalid recipient limit',
  maxMessageBytes: 'Maximum message size (bytes)',
  spamThreshold: 'Spam score threshold',
  sendAsAnyAddress: 'Send as any address',
  bounceValidation: 'Bounce address tag validation (BATV)',
  forwardBounces: 'Forward bounces to the sender',
};

const titleFromKey = (key: string): string => key.replace(/([A-Z])/g, ' $1').replace(/^./, (c) => c.toUpperCase());

function typeOf(value: unknown, key: SettingKey): SettingType {
  if (typeof value === 'boolean') return 'boolean';
  if (Array.isArray(value)) return 'domains';
  if (typeof value === 'number') return key === 'spamThreshold' ? 'number' : 'count';
  return 'selector';
}

function minimumOf(key: SettingKey): number | undefined {
  const inner: unknown = userSettingsSchema.shape[key].unwrap();
  // zod 4 number schemas expose their lower bound as `minValue` (null when unbounded).
  if (typeof inner === 'object' && inner !== null && 'minValue' in inner && typeof inner.minValue === 'number') return inner.minValue;
  return undefined;
}

export const settingsMeta: SettingMeta[] = settingKeys.map((key) => {
  const builtIn: unknown = builtInSettings[key];
  const min = minimumOf(key);
  return {
    key,
    title: TITLES[key] ?? titleFromKey(key),
    description: userSettingsSchema.shape[key].description ?? '',
    type: typeOf(builtIn, key),
    builtIn,
    ...(min !== undefined ? { min } : {}),
  };
});
