// The shapes the API reads and writes, as zod schemas: requests are validated with them and the
// OpenAPI document is generated from them, so the two cannot drift apart.
import { z } from 'zod';
import { ceilingsSchema } from '../../core/ceilings.js';
import { settingOverridesSchema, userSettingsSchema } from '../../core/settings.js';

/** Ids in paths are opaque: anything that is not an existing id of the caller's tenant is a 404. */
export const idParam = z.string().min(1).max(200);
export const tenantParams = z.object({ tenantId: idParam.describe('Tenant id') });
export const userParams = tenantParams.extend({ userId: idParam.describe('Outgoing user id') });

const isoTime = z.iso.datetime({ offset: true });
export const timestamp = z.iso.datetime().describe('ISO 8601 time, UTC');
export const nullableTimestamp = z.iso.datetime().nullable().describe('ISO 8601 time, UTC, or null');

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50).describe('Page size (1-500, default 50).'),
  cursor: z.string().min(1).max(500).optional().describe('`nextCursor` of the previous page.'),
});

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('Pass as `cursor` to get the next page; null on the last page.'),
  });
}

export const timeRangeQuery = z.object({
  from: isoTime.optional().describe('Inclusive start (ISO 8601 with offset).'),
  to: isoTime.optional().describe('Exclusive end (ISO 8601 with offset).'),
});

export const symbolSchema = z.object({
  name: z.string(),
  score: z.number().optional(),
  evidence: z.union([z.record(z.string(), z.unknown()), z.string()]).optional(),
});

// ---- tenants and keys
export const tenantSchema = z.object({
  id: z.string(),
  name: z.string(),
  suspended: z.boolean().describe('A suspended tenant cannot send and its keys are read-only.'),
  settings: settingOverridesSchema.describe('Tenant default settings (overrides of the deployment defaults).'),
  createdAt: timestamp,
});
export const tenantName = z.string().trim().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'use letters, digits, spaces, dots, underscores and hyphens');
export const createTenantBody = z.object({ name: tenantName, settings: settingOverridesSchema.optional() }).strict();
export const patchTenantBody = z.object({ suspended: z.boolean() }).strict();

export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: timestamp,
  lastUsedAt: nullableTimestamp,
});
export const createdApiKeySchema = apiKeySchema.extend({
  key: z.string().describe('The bearer token. Shown only in this response: it is stored hashed and cannot be read again.'),
});
export const createApiKeyBody = z.object({ name: z.string().trim().min(1).max(100) }).strict();

export const callerSchema = z.object({
  role: z.enum(['operator', 'tenant']),
  tenantId: z.string().nullable(),
  keyId: z.string().nullable(),
});

// ---- settings
/** PATCH body of settings: each key optional; null removes the override. */
const settingsPatchShape: Record<string, z.ZodType> = {};
for (const [key, field] of Object.entries(userSettingsSchema.shape)) {
  settingsPatchShape[key] = field.unwrap().nullable().optional().describe(field.description ?? key);
}
export const settingsPatchBody = z
  .object(settingsPatchShape)
  .strict()
  .describe('Keys to change; null removes the override so that the next layer (tenant default, deployment default, built-in) applies.');
export const settingsViewSchema = z.object({
  overrides: settingOverridesSchema.describe('What is set at this level.'),
  effective: userSettingsSchema.describe('What applies, all layers merged.'),
});

// ---- domains
export const domainSchema = z.object({
  name: z.string(),
  state: z.enum(['verified', 'pending']).describe('pending: added with a tenant key and not proven yet; it cannot be sent from or signed for.'),
  createdAt: timestamp,
  verification: z
    .object({
      type: z.literal('TXT'),
      name: z.string().describe('Where to publish the record: _outpost-verify.<domain>.'),
      value: z.string().describe('The text the record must hold: outpost-verify=<token>.'),
    })
    .nullable()
    .describe('The DNS record that proves a pending domain; null once verified.'),
  sendingIdentity: z
    .object({
      provider: z.literal('ses'),
      status: z
        .enum(['not-registered', 'pending', 'success', 'failed', 'temporary-failure', 'not-started', 'unknown'])
        .describe("The provider's verification of the domain; not-registered until Outpost registered it (it needs an RSA DKIM key), unknown when the provider did not answer."),
      sendingEnabled: z.boolean().describe('Whether the provider sends mail from the domain now.'),
      dkim: z.object({
        status: z.enum(['pending', 'success', 'failed', 'temporary-failure', 'not-started']).nullable(),
        selector: z.string().nullable().describe("The selector of Outpost's key the provider signs with."),
        outpostKey: z.boolean().describe("True when the provider signs with Outpost's key."),
      }),
      detail: z.string().nullable().describe('What to do while the provider does not send from the domain.'),
    })
    .optional()
    .describe("The sending provider's own verification (SES email identity), in deployments that deliver through SES; absent otherwise."),
});
export const addDomainBody = z.object({ name: z.string().min(1).max(253) }).strict();
export const domainParams = tenantParams.extend({ domain: z.string().min(1).max(253).describe('Domain name') });

// ---- ceilings
export const ceilingsViewSchema = z.object({ ceilings: ceilingsSchema.describe('Set by the operator; absent keys have no ceiling.') });
export const putCeilingsBody = ceilingsSchema.describe('The whole set of ceilings (keys left out have none).');

// ---- audit
export const auditEntrySchema = z.object({
  at: timestamp,
  tenantId: z.string().nullable(),
  actor: z.string().describe('operator, operator (cli), or tenant-key:<key id>.'),
  action: z.string().describe('e.g. domain.verified, user.unlocked, settings.changed, ceilings.changed, quarantine.released, key.created.'),
  target: z.string(),
  detail: z.record(z.string(), z.unknown()),
});

// ---- users
export const lockSchema = z.object({
  locked: z.boolean(),
  permanent: z.boolean().describe('Lifted only by an unlock.'),
  lockedAt: nullableTimestamp,
  until: nullableTimestamp.describe('When a temporary lock ends.'),
  reasons: z.array(symbolSchema),
  timedUnlocks: z.number().int(),
  placedBy: z.enum(['operator', 'tenant']).nullable().describe('Who locked by hand; null for an automatic lock. A lock placed by the operator is lifted only by the operator.'),
});
export const volumeSchema = z.object({
  messages: z.number().int(),
  recipients: z.number().int().describe('What counts against the hourly limit.'),
});
export const userKind = z.enum(['mailbox', 'domain', 'ip']);
export const userSummarySchema = z.object({
  id: z.string(),
  kind: userKind,
  identity: z.string().describe('user@domain (mailbox), domain (domain) or CIDR range (ip).'),
  domain: z.string().nullable(),
  hasPassword: z.boolean(),
  createdAt: timestamp,
  lock: lockSchema.nullable().describe('null when locks are not available in this deployment.'),
  today: volumeSchema.describe('Accepted since 00:00 UTC.'),
});
export const userDetailSchema = userSummarySchema.extend(settingsViewSchema.shape);
export const createdUserSchema = userDetailSchema.extend({
  generatedPassword: z.string().optional().describe('Present only when the password was generated; shown once.'),
});
/** AUTH PLAIN separates its fields with NUL, so a password holding one (or any control character) could never log in. */
const smtpPassword = z
  .string()
  .min(8)
  .max(200)
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters (mail clients cannot send them in SMTP AUTH)');
export const createUserBody = z
  .object({
    identity: z.string().trim().min(1).max(320).describe('user@domain, a domain, or an IP address / CIDR range.'),
    password: smtpPassword.optional().describe('Mailbox and domain users; generated when absent. Not allowed for IP users.'),
    settings: settingOverridesSchema.optional(),
  })
  .strict();
export const listUsersQuery = pageQuery.extend({ kind: userKind.optional() });
export const passwordBody = z.object({ password: smtpPassword.optional().describe('Generated when absent.') }).strict();
export const generatedPasswordSchema = z.object({ generatedPassword: z.string().describe('Shown once.') });

// ---- messages
export const messageStatus = z.enum(['received', 'queued', 'scanning', 'deferred', 'delivered', 'partially-delivered', 'bounced', 'quarantined', 'refused', 'expired', 'held-locked', 'held-manual', 'purged']);
export const messageSchema = z.object({
  id: z.string().describe('Queue id, as in "250 2.0.0 queued as ID".'),
  userId: z.string().nullable(),
  identity: z.string().nullable(),
  mailFrom: z.string(),
  rcptTo: z.array(z.string()),
  size: z.number().int(),
  subject: z.string().nullable(),
  status: messageStatus,
  receivedAt: timestamp,
  updatedAt: timestamp,
});
export const messageDetailSchema = z.object({
  message: messageSchema,
  events: z.array(z.object({ at: timestamp, event: z.string(), detail: z.record(z.string(), z.unknown()) })),
});
export const searchMessagesQuery = pageQuery.extend(timeRangeQuery.shape).extend({
  sender: z.string().min(1).max(320).optional().describe('Envelope sender (exact, case-insensitive).'),
  recipient: z.string().min(1).max(320).optional().describe('One of the recipients (exact, case-insensitive).'),
  status: messageStatus.optional(),
  userId: idParam.optional().describe('Only messages of this user.'),
});
export const messageParams = tenantParams.extend({ messageId: idParam.describe('Queue id') });

// ---- statistics
export const statsQuery = timeRangeQuery.extend({
  bucket: z.enum(['hour', 'day']).default('hour').describe('hour: at most 31 days; day: at most 400 days.'),
});
export const statsSchema = z.object({
  bucket: z.enum(['hour', 'day']),
  from: timestamp,
  to: timestamp,
  points: z.array(
    z.object({
      start: timestamp,
      messages: z.number().int(),
      recipients: z.number().int(),
      sent: z.number().int(),
      refused: z.record(z.string(), z.number().int()).describe('Messages not delivered, by reason (symbol or status).'),
    }),
  ),
  totals: z.object({
    messages: z.number().int(),
    recipients: z.number().int(),
    sent: z.number().int(),
    refused: z.record(z.string(), z.number().int()),
  }),
});

// ---- locks
export const lockedUserSchema = lockSchema.extend({ userId: z.string(), identity: z.string() });
export const lockBody = z
  .object({
    reason: z.string().trim().min(1).max(500).describe('Recorded in the lock history.'),
    minutes: z.number().int().min(1).max(525_600).optional().describe('Lock for this long; permanent (until unlocked) when absent.'),
  })
  .strict();
export const unlockBody = z.object({ reason: z.string().trim().min(1).max(500).describe('Recorded in the lock history.') }).strict();
export const lockEventSchema = z.object({
  kind: z.enum(['lock', 'timed-unlock', 'manual-unlock']),
  at: timestamp,
  reasons: z.array(symbolSchema).optional(),
  until: nullableTimestamp.optional(),
  permanent: z.boolean().optional(),
  timedUnlocks: z.number().int(),
  by: z.string().optional(),
  reason: z.string().optional(),
});

// ---- DKIM
export const dkimKeySchema = z.object({
  domain: z.string(),
  selector: z.string(),
  algorithm: z.enum(['rsa', 'ed25519']),
  publicKey: z.string(),
  isDefault: z.boolean(),
  createdAt: timestamp,
  dns: z.object({
    name: z.string().describe('SELECTOR._domainkey.DOMAIN.'),
    value: z.string().describe('The TXT value.'),
    zoneLine: z.string().describe('The zone-file line, split into strings of at most 255 characters.'),
  }),
});
export const createDkimKeyBody = z
  .object({
    selector: z.string().min(1).max(63).optional().describe('Generated (oYYYYMMDD) when absent.'),
    algorithm: z.enum(['rsa', 'ed25519']).default('rsa'),
    makeDefault: z.boolean().optional().describe("Sign the domain's mail with it; the first key of a domain always is the default."),
  })
  .strict();
export const rotateDkimKeyBody = createDkimKeyBody.omit({ makeDefault: true });
export const dkimKeyParams = domainParams.extend({ selector: z.string().min(1).max(63) });

// ---- suppression list
export const suppressionSchema = z.object({
  address: z.string(),
  source: z.enum(['bounce', 'manual']).describe('bounce: added by a hard bounce (expires); manual: added through the API, CLI or panel.'),
  reason: z.string(),
  createdAt: timestamp,
  expiresAt: nullableTimestamp.describe('null: until removed.'),
});
export const addSuppressionBody = z
  .object({
    address: z.string().trim().min(3).max(320).describe('Recipient address (local@domain).'),
    reason: z.string().trim().max(500).default(''),
    expiresAt: isoTime.nullable().optional().describe('When the entry ends; absent or null: until removed.'),
  })
  .strict();
export const suppressionParams = tenantParams.extend({ address: z.string().min(1).max(320).describe('Recipient address (URL-encoded)') });

// ---- quarantine
export const quarantineSchema = z.object({
  messageId: z.string().describe('Queue id'),
  userId: z.string(),
  identity: z.string(),
  kind: z.enum(['clean', 'spam', 'virus', 'blocked', 'malformed', 'deferred']).describe('The verdict that held it.'),
  reasons: z.array(symbolSchema).describe('Named symbols with their evidence.'),
  explanation: z.array(z.string()).describe('The reasons in words, as told to the sender.'),
  subject: z.string().nullable(),
  mailFrom: z.string(),
  rcptTo: z.array(z.string()),
  size: z.number().int(),
  receivedAt: timestamp,
  quarantinedAt: timestamp,
});
export const quarantineDetailSchema = quarantineSchema.extend({
  headers: z
    .array(z.object({ name: z.string(), value: z.string() }))
    .describe('Header fields of the held message, in order (unfolded). The body is never shown through the API.'),
});
export const quarantineParams = tenantParams.extend({ messageId: idParam.describe('Queue id') });
