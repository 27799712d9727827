// Locks of outgoing users: who is locked, lock and unlock by hand (with a reason), history.
import type { LockEvent, UserLocks } from '../../core/locks.js';
import { effectiveUserSettings } from '../../core/stores.js';
import { recordAudit } from './audit.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem } from './problem.js';
import { callerName, defineRoute, iso, isoOrNull, isTenantKey, paginate, type Route } from './route.js';
import { presentLock, userOf } from './routes-users.js';
import { lockBody, lockedUserSchema, lockEventSchema, lockSchema, pageOf, pageQuery, tenantParams, unlockBody, userParams } from './schemas.js';

/** Symbol recorded as the reason of a lock set through the API. */
export const MANUAL_LOCK = 'MANUAL_LOCK';

function locksOf(deps: ApiDeps): UserLocks {
  // The app answers 501 before calling a handler whose port is missing; this is the type guard.
  if (!deps.locks) throw new ApiProblem(501, 'user locks are not available in this deployment');
  return deps.locks;
}

const presentEvent = (event: LockEvent) => ({
  kind: event.kind,
  at: iso(event.at),
  ...(event.reasons ? { reasons: event.reasons } : {}),
  ...(event.until !== undefined ? { until: isoOrNull(event.until) } : {}),
  ...(event.permanent !== undefined ? { permanent: event.permanent } : {}),
  timedUnlocks: event.timedUnlocks,
  ...(event.by !== undefined ? { by: event.by } : {}),
  ...(event.reason !== undefined ? { reason: event.reason } : {}),
});

export const lockRoutes: Route[] = [
  defineRoute({
    operationId: 'listLocks',
    method: 'get',
    path: '/v1/tenants/{tenantId}/locks',
    tag: 'locks',
    summary: "The tenant's users that are locked now",
    access: 'tenant',
    requires: 'locks',
    params: tenantParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of locked users', schema: pageOf(lockedUserSchema) } },
    handle: async ({ tenant, query, deps }) => {
      const locked = await locksOf(deps).listLocks({ tenantId: tenant.id });
      const page = paginate(locked, (state) => state.identity, query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map((state) => ({ userId: state.userId, identity: state.identity, ...presentLock(state) })), nextCursor: page.nextCursor } };
    },
  }),
  defineRoute({
    operationId: 'lockUser',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users/{userId}/lock',
    tag: 'locks',
    summary: 'Lock a user by hand, permanently or for some minutes (whatever its autoLock setting)',
    description: 'A user that is already locked stays locked as it is.',
    access: 'tenant',
    requires: 'locks',
    params: userParams,
    body: lockBody,
    responses: { 200: { description: 'The lock state', schema: lockSchema } },
    handle: async ({ tenant, params, body, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      const settings = effectiveUserSettings(user.settings, tenant, deps.defaults);
      // lockAfterAbuse decides permanence by the timeout unlocks left: none left -> permanent.
      const outcome = await locksOf(deps).lockAfterAbuse(
        user,
        [{ name: MANUAL_LOCK, evidence: { by: callerName(caller), reason: body.reason } }],
        {
          ...settings,
          autoLock: true,
          lockMinutes: body.minutes ?? settings.lockMinutes,
          maxTimedUnlocks: body.minutes === undefined ? 0 : Number.MAX_SAFE_INTEGER,
        },
        isTenantKey(caller) ? 'tenant' : 'operator',
      );
      if (!outcome.locked) throw new ApiProblem(409, `user ${user.id} could not be locked (${outcome.reason})`);
      await recordAudit(deps, caller, tenant.id, 'user.locked', user.identity, { reason: body.reason, minutes: body.minutes ?? null });
      return { status: 200, body: presentLock(outcome.state) };
    },
  }),
  defineRoute({
    operationId: 'unlockUser',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users/{userId}/unlock',
    tag: 'locks',
    summary: 'Unlock a user (also resets its timeout-unlock count and the counters that caused the lock)',
    access: 'tenant',
    requires: 'locks',
    params: userParams,
    body: unlockBody,
    responses: { 200: { description: 'The lock state', schema: lockSchema } },
    handle: async ({ tenant, params, body, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      const current = await locksOf(deps).status(user.id);
      if (current?.locked && current.placedBy === 'operator' && isTenantKey(caller)) {
        throw new ApiProblem(403, `${user.identity} was locked by the operator; only the operator can unlock it`);
      }
      const state = await locksOf(deps).unlock(user.id, callerName(caller), body.reason);
      await recordAudit(deps, caller, tenant.id, 'user.unlocked', user.identity, { reason: body.reason });
      return { status: 200, body: presentLock(state) };
    },
  }),
  defineRoute({
    operationId: 'lockHistory',
    method: 'get',
    path: '/v1/tenants/{tenantId}/users/{userId}/lock-history',
    tag: 'locks',
    summary: "A user's locks and unlocks with their reasons, newest first",
    access: 'tenant',
    requires: 'locks',
    params: userParams,
    query: pageQuery,
    responses: { 200: { description: 'A page of lock events', schema: pageOf(lockEventSchema) } },
    handle: async ({ tenant, params, query, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      const events = (await locksOf(deps).history(user.id)).map((event, index) => ({ event, index }));
      // Newest first. History only grows at the end, so an event's position is stable; the key
      // counts down from a large number, zero-padded so that strings sort as numbers.
      const page = paginate(events, (item) => String(1e12 - item.index).padStart(13, '0'), query.limit, query.cursor);
      return { status: 200, body: { items: page.items.map((item) => presentEvent(item.event)), nextCursor: page.nextCursor } };
    },
  }),
];
