// Held mail of an outgoing user: what is held and why, and hold, release and purge by hand.
// The tenant may do all of it for its own users. Release is refused while the user is locked
// (an operator's lock included): the lock is lifted by unlock, which releases the mail itself.
import { z } from 'zod';
import type { HoldReason } from '../../core/holds.js';
import type { ApiDeps } from './deps.js';
import { ApiProblem } from './problem.js';
import { callerName, defineRoute, iso, type Route } from './route.js';
import { userOf } from './routes-users.js';
import { timestamp, userParams } from './schemas.js';

function holdsOf(deps: ApiDeps): NonNullable<ApiDeps['holds']> {
  // The app answers 501 before calling a handler whose port is missing; this is the type guard.
  if (!deps.holds) throw new ApiProblem(501, 'held mail is not available in this deployment');
  return deps.holds;
}

const holdReason = z.enum(['locked', 'manual'] satisfies HoldReason[]).describe('locked: the user is (or was) locked when the job came up; manual: the user was put on hold.');

const heldMailSchema = z.object({
  onHold: z.boolean().describe('Put on hold by hand: its mail is held as it comes up until released.'),
  heldBy: z.string().nullable(),
  heldSince: timestamp.nullable(),
  messages: z.array(
    z.object({
      messageId: z.string(),
      stage: z.enum(['scan', 'deliver']).describe('The queue the job returns to on release.'),
      reason: holdReason,
      heldAt: timestamp,
      overdue: z.boolean().describe("Held longer than the queue's lifetime (the retry schedule's total); it stays held until released or purged."),
    }),
  ),
});

const MAX_LISTED = 1000;

export const holdRoutes: Route[] = [
  defineRoute({
    operationId: 'listHeldMail',
    method: 'get',
    path: '/v1/tenants/{tenantId}/users/{userId}/queue',
    tag: 'queue',
    summary: "The user's held mail (the oldest 1000 messages) and whether it is on hold",
    access: 'tenant',
    requires: 'holds',
    params: userParams,
    responses: { 200: { description: 'Held mail', schema: heldMailSchema } },
    handle: async ({ tenant, params, deps, now }) => {
      const { holds, store, queueLifetimeMs } = holdsOf(deps);
      const user = await userOf(deps, tenant, params.userId);
      const hold = await holds.onHold(user.id);
      const held = await store.list({ userId: user.id, limit: MAX_LISTED });
      return {
        status: 200,
        body: {
          onHold: hold !== undefined,
          heldBy: hold?.by ?? null,
          heldSince: hold ? iso(hold.at) : null,
          messages: held.map((item) => ({ messageId: item.messageId, stage: item.stage, reason: item.reason, heldAt: iso(item.heldAt), overdue: item.heldAt < now - queueLifetimeMs })),
        },
      };
    },
  }),
  defineRoute({
    operationId: 'holdUserMail',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users/{userId}/queue/hold',
    tag: 'queue',
    summary: "Put the user on hold: its queued mail (and any new mail) is held as it comes up, until released",
    description: 'Mail waiting for a retry is held when its retry time comes. Holding does not lock the user: it may still submit, and that mail is held too.',
    access: 'tenant',
    requires: 'holds',
    params: userParams,
    responses: { 200: { description: 'On hold', schema: z.object({ onHold: z.literal(true), alreadyOnHold: z.boolean() }) } },
    handle: async ({ tenant, params, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      const { alreadyOnHold } = await holdsOf(deps).holds.hold(user, callerName(caller));
      return { status: 200, body: { onHold: true, alreadyOnHold } };
    },
  }),
  defineRoute({
    operationId: 'releaseUserMail',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users/{userId}/queue/release',
    tag: 'queue',
    summary: 'Take the user off hold and put its held mail back in the queue',
    description: 'Refused (409) while the user is locked: unlock it instead, which releases its held mail.',
    access: 'tenant',
    requires: 'holds',
    params: userParams,
    responses: {
      200: { description: 'Released', schema: z.object({ released: z.number().int().describe('Messages put back in the queue.') }) },
      409: { description: 'The user is locked' },
    },
    handle: async ({ tenant, params, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      return { status: 200, body: await holdsOf(deps).holds.release(user, callerName(caller)) };
    },
  }),
  defineRoute({
    operationId: 'purgeUserMail',
    method: 'post',
    path: '/v1/tenants/{tenantId}/users/{userId}/queue/purge',
    tag: 'queue',
    summary: "Delete the user's held mail for good (the sender is not told)",
    description: 'Each purged message gets status `purged` in the message log. A lock or hold stays as it is.',
    access: 'tenant',
    requires: 'holds',
    params: userParams,
    responses: { 200: { description: 'Purged', schema: z.object({ purged: z.number().int().describe('Messages deleted.') }) } },
    handle: async ({ tenant, params, caller, deps }) => {
      const user = await userOf(deps, tenant, params.userId);
      return { status: 200, body: await holdsOf(deps).holds.purge(user.id, callerName(caller)) };
    },
  }),
];
