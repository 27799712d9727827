// Outgoing users of the three kinds (mailbox, domain, IP range), their settings and passwords.
import { createUser, generatePassword, UserCreationRefused, type UserRefusal } from '../../core/app/create-user.js';
import { hashPassword, type OutgoingUser, type Tenant } from '../../core/identity.js';
import type { LockState } from '../../core/locks.js';
import { effectiveUserSettings } from '../../core/stores.js';
import { recordAudit } from './audit.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem, notFound } from './problem.js';
import { callerName, defineRoute, iso, isoOrNull, isTenantKey, paginate, type Route } from './route.js';
import { applySettingsPatch } from './routes-tenants.js';
import { assertWithinTenantBounds } from './tenant-bounds.js';
import {
  createdUserSchema,
  createUserBody,
  generatedPasswordSchema,
  listUsersQuery,
  pageOf,
  passwordBody,
  settingsPatchBody,
  tenantParams,
  userDetailSchema,
  userParams,
  userSummarySchema,
} from './schemas.js';

const DAY_MS = 86_400_000;

/** The user `userId` if it belongs to `tenant`; any other id is "not found". */
export async function userOf(deps: ApiDeps, tenant: Tenant, userId: string): Promise<OutgoingUser> {
  const user = await deps.configStore.getUser(userId);
  if (!user || user.tenantId !== tenant.id) throw notFound(`tenant ${tenant.id} has no user ${userId}`);
  return user;
}

export function presentLock(state: LockState | undefined) {
  return {
    locked: state?.locked ?? false,
    permanent: state?.permanent ?? false,
    lockedAt: isoOrNull(state?.lockedAt),
    until: isoOrNull(state?.until),
    reasons: state?.reasons ?? [],
    timedUnlocks: state?.timedUnlocks ?? 0,
    placedBy: state?.placedBy ?? null,
  };
}

async function lockOf(deps: ApiDeps, userId: string) {
  return deps.locks ? presentLock(await deps.locks.status(userId)) : null;
}

function summary(user: OutgoingUser, lock: ReturnType<typeof presentLock> | null, today: { messages: number; recipients: number } | undefined) {
  return {
    id: user.id,
    kind: user.kind,
    identity: user.identity,
    domain: user.domain,
    hasPassword: user.passwordHash !== null,
    createdAt: iso(user.createdAt),
    lock,
    today: today ?? { messages: 0, recipients: 0 },
  };
}

async function detail(deps: ApiDeps, tenant: Tenant, user: OutgoingUser, now: number) {
  const startOfDay = Math.floor(now / DAY_MS) * DAY_MS;
  const today = (await deps.stats.volumeByUser(tenant.id, startOfDay, now + 1)).get(user.id);
  return {
    ...summary(user, await lockOf(deps, user.id), today),
    overrides: user.settings,
    effective: effectiveUserSettings(user.settings, tenant, deps.defaults),
  };
}

/** The API's words for a refused user: 409 for a range that is another tenant's, 422 for the rest. */
function refusalProblem(refusal: UserRefusal, tenant: Tenant): ApiProblem {
  switch (refusal.reason) {
    case 'domain-not-of-tenant':
      return new ApiProblem(422, `${refusal.domain} is not one of this tenant's domains; add it first with POST /v1/tenants/${tenant.id}/domains`);
    case 'password-for-ip-user':
      return new ApiProblem(422, 'IP users are identified by their source address and take no password; leave out "password"');
    case 'range-not-for-tenants':
      return new ApiProblem(422, refusal.detail);
    case 'range-too-wide':
      return new ApiProblem(422, `${refusal.range} is wider than /${refusal.widest}: an IP user relays without AUTH, so its range must hold only the tenant's own mail servers`);
    case 'range-overlap':
      // Another tenant's range is not named: the refusal must not reveal its data.
      return new ApiProblem(409, `${refusal.range} overlaps an IP range of another tenant; ask the operator which addresses are yours`);
  }
}

export const userRoutes: Route[] = [
  defineRoute({
    operationId: 'listUsers',
    method: 'get',
    path: '/v1/tenants/{tenantId}/users',
    tag: 'users',
    summary: 'List outgoing users with their lock state and volume today',
    access: 'tenant',
    params: tenantParams,
    query: listUsersQuery,
    responses: { 200: { description: 'A page of users, by identity', schema: pageOf(userSummarySchema) } },
    handle: async ({ tenant, query, deps, now }) => {
      const users = await deps.configStore.listUsers({ tenantId: tenant.id, ...(query.kind ? { kind: query.kind } : {}) });
      const page = paginate(users, (user) => user.identity, query.limit, query.cursor);
      const startOfDay = Math.floor(now / DAY_MS) * DAY_MS;
      const volumes = await deps.stats.volumeByUser(tenant.id, startOfDay, now + 1);
      const items = await Promise.all(page.items.map(async (user) => summary(user, await lockOf(deps, user.id), volumes.get(user.id))));
      return { status: 200, body: { items, nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'createUser',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users',
    tag: 'users',
    summary: 'Create an outgoing user',
    description:
      'The kind follows from the identity: `user@domain` is a mailbox user, a bare domain a domain user (may send as any address of it), an IP or CIDR range an IP user (smarthost, no AUTH). Mailbox and domain identities must be in one of the tenant\'s domains. Without `password`, one is generated and returned once.',
    access: 'tenant',
    params: tenantParams,
    body: createUserBody,
    responses: {
      201: { description: 'Created', schema: createdUserSchema },
      409: { description: "The identity exists, or the IP range overlaps another tenant's" },
      422: { description: 'Invalid identity, domain not of the tenant, a password for an IP user, an IP range wider than /16 (IPv4) or /32 (IPv6), or, with a tenant key, wider than /24 (IPv6 /56) or in a loopback, private, link-local, multicast or reserved range' },
    },
    handle: async ({ tenant, body, caller, deps, now }) => {
      assertWithinTenantBounds(caller, tenant, body.settings);
      let created;
      try {
        created = await createUser(deps, {
          tenant,
          identity: body.identity,
          ...(body.password !== undefined ? { password: body.password } : {}),
          settings: body.settings ?? {},
          actor: callerName(caller),
          asTenant: isTenantKey(caller),
        });
      } catch (error: unknown) {
        if (error instanceof UserCreationRefused) throw refusalProblem(error.refusal, tenant);
        throw error;
      }
      const { user, generatedPassword: generated } = created;
      return {
        status: 201,
        body: { ...(await detail(deps, tenant, user, now)), ...(generated ? { generatedPassword: generated } : {}) },
        headers: { Location: `/v1/tenants/${tenant.id}/users/${user.id}` },
      };
    },
  }),
  defineRoute({
    operationId: 'getUser',
    method: 'get',
    path: '/v1/tenants/{tenantId}/users/{userId}',
    tag: 'users',
    summary: 'Read a user: lock state, volume today, its overrides and effective settings',
    access: 'tenant',
    params: userParams,
    responses: { 200: { description: 'The user', schema: userDetailSchema } },
    handle: async ({ tenant, params, deps, now }) => ({ status: 200, body: await detail(deps, tenant, await userOf(deps, tenant, params.userId), now) }),
  }),
  defineRoute({
    operationId: 'updateUserSettings',
    method: 'patch',
    path: '/v1/tenants/{tenantId}/users/{userId}/settings',
    tag: 'users',
    summary: "Change a user's settings (null removes an override)",
    access: 'tenant',
    params: userParams,
    body: settingsPatchBody,
    responses: { 200: { description: 'The user', schema: userDetailSchema } },
    handle: async ({ tenant, params, body, caller, deps, now }) => {
      const user = await userOf(deps, tenant, params.userId);
      assertWithinTenantBounds(caller, tenant, body);
      const updated = await deps.configStore.updateUser(user.id, { settings: applySettingsPatch(user.settings, body) });
      await recordAudit(deps, caller, tenant.id, 'settings.changed', user.identity, { changes: body });
      return { status: 200, body: await detail(deps, tenant, updated, now) };
    },
  }),
  defineRoute({
    operationId: 'setUserPassword',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users/{userId}/password',
    tag: 'users',
    summary: 'Set or rotate the SMTP password (generated when absent, then returned once)',
    access: 'tenant',
    params: userParams,
    body: passwordBody,
    responses: {
      200: { description: 'A password was generated; it is shown only now', schema: generatedPasswordSchema },
      204: { description: 'The given password was set' },
      422: { description: 'IP users have no password' },
    },
    handle: async ({ tenant, params, body, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      if (user.kind === 'ip') throw new ApiProblem(422, 'IP users are identified by their source address and have no password');
      const generated = body.password === undefined ? generatePassword() : undefined;
      await deps.configStore.updateUser(user.id, { passwordHash: await hashPassword(body.password ?? generated ?? '') });
      await recordAudit(deps, caller, tenant.id, 'user.password-set', user.identity);
      return generated ? { status: 200, body: { generatedPassword: generated } } : { status: 204 };
    },
  }),
  defineRoute({
    operationId: 'deleteUser',
    method: 'delete',
    path: '/v1/tenants/{tenantId}/users/{userId}',
    tag: 'users',
    summary: 'Delete a user (it can no longer send)',
    access: 'tenant',
    params: userParams,
    responses: { 204: { description: 'Deleted' } },
    handle: async ({ tenant, params, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      await deps.configStore.deleteUser(user.id);
      await recordAudit(deps, caller, tenant.id, 'user.deleted', user.identity);
      return { status: 204 };
    },
  }),
];
