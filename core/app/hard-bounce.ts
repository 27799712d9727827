// What a hard bounce changes, wherever it was learned (a 5.1.x answer during delivery, or a
// bounce report that came back and was attributed to our message): the address goes on the
// tenant's suppression list, so that the next message to it is refused at RCPT instead of
// bouncing again, and the user is charged one invalid recipient (the invalid-recipient limit,
// and so the automatic lock).
import type { Clock } from '../ports.js';
import { suppressHardBounce, type SuppressionList } from '../suppression.js';

export interface HardBounce {
  tenantId: string;
  userId: string;
  recipient: string;
  /** The remote answer or the report's status and diagnostic: why the address is suppressed. */
  reason: string;
}

export interface HardBounceDeps {
  suppression: SuppressionList;
  clock: Clock;
  /** Charges the user one invalid recipient (the ingress policy's counter). */
  countInvalidRecipient(userId: string, recipient: string): Promise<void>;
  /** Days a hard-bounced address stays suppressed (default: the suppression list's). */
  suppressionDays?: number;
}

export type HardBounceReaction = (bounce: HardBounce) => Promise<void>;

export function makeHardBounceReaction(deps: HardBounceDeps): HardBounceReaction {
  return async (bounce) => {
    await suppressHardBounce(deps.suppression, {
      tenantId: bounce.tenantId,
      address: bounce.recipient,
      reason: bounce.reason,
      now: deps.clock.now(),
      ...(deps.suppressionDays === undefined ? {} : { days: deps.suppressionDays }),
    });
    await deps.countInvalidRecipient(bounce.userId, bounce.recipient);
  };
}
