// The API's shapes, taken from its own zod schemas at type level only (erased from the bundle):
// if the API changes a shape, the panel stops type-checking instead of silently drifting.
import type { z } from 'zod';
import type {
  apiKeySchema,
  createdApiKeySchema,
  createdUserSchema,
  dkimKeySchema,
  domainSchema,
  lockedUserSchema,
  lockEventSchema,
  lockSchema,
  messageDetailSchema,
  messageSchema,
  settingsViewSchema,
  statsSchema,
  tenantSchema,
  userDetailSchema,
  userSummarySchema,
} from '../../lambdas/api/schemas.js';

export type Tenant = z.output<typeof tenantSchema>;
export type ApiKey = z.output<typeof apiKeySchema>;
export type CreatedApiKey = z.output<typeof createdApiKeySchema>;
export type Domain = z.output<typeof domainSchema>;
export type UserSummary = z.output<typeof userSummarySchema>;
export type UserDetail = z.output<typeof userDetailSchema>;
export type CreatedUser = z.output<typeof createdUserSchema>;
export type Lock = z.output<typeof lockSchema>;
export type LockedUser = z.output<typeof lockedUserSchema>;
export type LockEvent = z.output<typeof lockEventSchema>;
export type SettingsView = z.output<typeof settingsViewSchema>;
export type DkimKey = z.output<typeof dkimKeySchema>;
export type Message = z.output<typeof messageSchema>;
export type MessageDetail = z.output<typeof messageDetailSchema>;
export type Stats = z.output<typeof statsSchema>;

import type { auditEntrySchema, ceilingsViewSchema, quarantineDetailSchema, quarantineSchema, suppressionSchema } from '../../lambdas/api/schemas.js';
export type CeilingsView = z.output<typeof ceilingsViewSchema>;
export type AuditEntry = z.output<typeof auditEntrySchema>;
export type Quarantined = z.output<typeof quarantineSchema>;
export type QuarantinedDetail = z.output<typeof quarantineDetailSchema>;
export type Suppression = z.output<typeof suppressionSchema>;
